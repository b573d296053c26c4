// The host emulator's stand-in for the CUDA language: one std::thread per CUDA thread, a
// std::barrier for __syncthreads, static storage for __shared__ (one block runs at a time).
// Enough for kernels/cuda/*.cu and nothing more; it checks logic, not speed or races the
// hardware would hide.
#pragma once

#include <atomic>
#include <barrier>
#include <math.h>
#include <stdint.h>
#include <string.h>

struct dim3 {
    unsigned x = 0, y = 0, z = 0;
};

inline thread_local dim3 threadIdx;
inline thread_local dim3 blockIdx;
inline thread_local dim3 blockDim;
inline std::barrier<>* emu_block_barrier = nullptr;

#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(n)
#define __align__(n) alignas(n)
#define __shared__ static
#define __syncthreads() emu_block_barrier->arrive_and_wait()

// Dynamic shared memory: one buffer, as large as the most an sm_90 block can opt in to
// (227 KiB, less the kernels' static shared memory); the driver side (driver/src/emu.rs)
// refuses a launch above 48 KiB unless cuFuncSetAttribute opted in, as the driver does.
#define BNF_EMU_DYNAMIC_SHARED_BYTES (227 * 1024 - 5 * 1024)
alignas(16) inline unsigned char emu_dynamic_shared[BNF_EMU_DYNAMIC_SHARED_BYTES];
#define BNF_DYNAMIC_SHARED(name) static unsigned char* const name = emu_dynamic_shared
// The launch's dynamic shared memory size (the device's %dynamic_smem_size).
inline unsigned emu_dynamic_shared_size = 0;
inline unsigned bnf_dynamic_shared_bytes() { return emu_dynamic_shared_size; }
// Set by a 16-byte access to an address that is not 16-byte aligned (the device faults with
// CUDA_ERROR_MISALIGNED_ADDRESS); the launch then reports the fault.
inline std::atomic<bool> emu_misaligned{false};

#define BNF_EMU
#define BNF_PRAGMA_UNROLL

struct alignas(16) uint4 {
    unsigned x, y, z, w;
};
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return uint4{x, y, z, w}; }

inline float __uint_as_float(unsigned u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}
inline unsigned __float_as_uint(float f) {
    unsigned u;
    memcpy(&u, &f, 4);
    return u;
}

inline uint4 emu_load16(const void* p) {
    uint4 v{0, 0, 0, 0};
    if (reinterpret_cast<uintptr_t>(p) % 16 != 0) {
        emu_misaligned = true;
        return v;
    }
    memcpy(&v, p, 16);
    return v;
}
inline void emu_store16(void* p, uint4 v) {
    if (reinterpret_cast<uintptr_t>(p) % 16 != 0) {
        emu_misaligned = true;
        return;
    }
    memcpy(p, &v, 16);
}
inline uint4 bnf_load16(const void* p) { return emu_load16(p); }
inline void bnf_store16(void* p, uint4 v) { emu_store16(p, v); }
inline uint4 bnf_load16_shared(const void* p) { return emu_load16(p); }
inline void bnf_store16_shared(void* p, uint4 v) { emu_store16(p, v); }
