// Host stand-in for CUDA's half type: storage and round-to-nearest-even conversions only.
#pragma once

#include <stdint.h>
#include <string.h>

struct __half {
    uint16_t bits;
};

inline float __half2float(__half h) {
    const uint32_t sign = (uint32_t)(h.bits & 0x8000u) << 16;
    const uint32_t exp = (h.bits >> 10) & 0x1Fu;
    const uint32_t man = h.bits & 0x3FFu;
    float f;
    if (exp == 0x1Fu) {
        const uint32_t u = sign | 0x7F800000u | (man << 13);
        memcpy(&f, &u, 4);
    } else if (exp == 0) {
        f = ldexpf((float)man, -24);  // zero or subnormal, exact
        if (sign) f = -f;
    } else {
        const uint32_t u = sign | ((exp + 112u) << 23) | (man << 13);
        memcpy(&f, &u, 4);
    }
    return f;
}

inline __half __float2half_rn(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    const uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    const uint32_t a = u & 0x7FFFFFFFu;
    __half h;
    if (a > 0x7F800000u) {  // NaN
        h.bits = sign | 0x7E00u;
    } else if (a >= 0x477FF000u) {  // rounds to >= 65520: infinity
        h.bits = sign | 0x7C00u;
    } else if (a < 0x38800000u) {  // below the smallest normal half: round in units of 2^-24
        float mag;
        memcpy(&mag, &a, 4);
        h.bits = sign | (uint16_t)nearbyintf(mag * 16777216.0f);
    } else {
        const uint32_t mant = a & 0x7FFFFFu;
        uint32_t r = ((a >> 23) - 112u) << 10 | (mant >> 13);
        const uint32_t rest = mant & 0x1FFFu;
        if (rest > 0x1000u || (rest == 0x1000u && (r & 1u))) r += 1;
        h.bits = sign | (uint16_t)r;
    }
    return h;
}

inline __half __ushort_as_half(unsigned short b) {
    __half h;
    h.bits = b;
    return h;
}
inline unsigned short __half_as_ushort(__half h) { return h.bits; }
