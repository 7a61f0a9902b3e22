#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <openssl/sha.h>

// SHA256_Init/Update/Final are deprecated in OpenSSL 3 but remain the fastest way to
// reuse a context without EVP's per-call provider lookup. Wrapping them keeps the
// deprecation inside this header.
typedef SHA256_CTX mlv_sha256_ctx;
static inline void mlv_sha256_init(mlv_sha256_ctx *c) { SHA256_Init(c); }
static inline void mlv_sha256_update(mlv_sha256_ctx *c, const void *p, size_t n) { SHA256_Update(c, p, n); }
static inline void mlv_sha256_final(mlv_sha256_ctx *c, unsigned char *out) { SHA256_Final(out, c); }
static inline void mlv_sha256(const void *p, size_t n, unsigned char *out) { SHA256((const unsigned char *)p, n, out); }

#include <openssl/md5.h>
// MD5 only derives FastCDC's canonical gear table; it never identifies content.
static inline void mlv_md5(const void *p, size_t n, unsigned char *out) { MD5((const unsigned char *)p, n, out); }

#include <openssl/hmac.h>
#include <openssl/evp.h>
// HMAC-SHA256 in one call (SigV4 signing keys and signatures).
static inline void mlv_hmac_sha256(const void *key, int keylen, const void *p, size_t n, unsigned char *out) {
    unsigned int len = 32;
    HMAC(EVP_sha256(), key, keylen, (const unsigned char *)p, n, out, &len);
}
