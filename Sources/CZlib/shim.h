#include <zlib.h>

// deflateInit and inflateInit are macros; Swift cannot call macros, so wrap them.
static inline int mlv_deflateInit(z_streamp stream, int level) {
    return deflateInit(stream, level);
}
static inline int mlv_inflateInit(z_streamp stream) {
    return inflateInit(stream);
}
