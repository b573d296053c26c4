// The host emulator's stand-in for the CUDA language: one std::thread per CUDA thread, a
// std::barrier for __syncthreads, static storage for __shared__ (one block runs at a time).
// Enough for kernels/cuda/*.cu and nothing more; it checks logic, not speed or races the
// hardware would hide.
#pragma once

#include <barrier>
#include <math.h>

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

// Dynamic shared memory: one buffer (48 KiB, the per-block limit without opt-in).
#define BNF_EMU_DYNAMIC_SHARED_BYTES (48 * 1024)
alignas(16) inline unsigned char emu_dynamic_shared[BNF_EMU_DYNAMIC_SHARED_BYTES];
#define BNF_DYNAMIC_SHARED(name) static unsigned char* const name = emu_dynamic_shared
