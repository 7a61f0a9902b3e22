#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

// SNI and the minimum protocol version are macros over SSL_ctrl / SSL_CTX_ctrl, which
// Swift cannot call; wrap them as functions.
static inline int mlv_ssl_set_sni(SSL *s, const char *name) { return (int)SSL_set_tlsext_host_name(s, name); }
static inline int mlv_ssl_ctx_min_tls12(SSL_CTX *c) { return (int)SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION); }
