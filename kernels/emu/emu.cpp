// Host emulator of the kernels in kernels/cuda: compiles the CUDA sources as C++ (with the
// stand-ins in include/) and runs a launch as `threads` std::threads per block, blocks one
// after another. bnf-driver's `emu` feature routes cuLaunchKernel here, so the GPU tests run
// end to end on a machine without a GPU. Not a performance model.
#include "cuda_emu.h"

#include <cstring>
#include <thread>
#include <utility>
#include <vector>

#include "../cuda/bnf.cu"
#include "../cuda/naive.cu"

namespace {

// Call `f` with its arguments read from `args` (one pointer per parameter, as cuLaunchKernel).
template <typename... A, size_t... I>
void call_with(void (*f)(A...), void** args, std::index_sequence<I...>) {
    f(*static_cast<std::remove_cv_t<std::remove_reference_t<A>>*>(args[I])...);
}

template <typename... A>
void call(void (*f)(A...), void** args) {
    call_with(f, args, std::index_sequence_for<A...>{});
}

struct Entry {
    const char* name;
    void (*run)(void**);
};

#define ENTRY(k) {#k, [](void** a) { call(k, a); }}
#define DTYPE_ENTRIES(s)                                                                             \
    ENTRY(row_stats_##s), ENTRY(row_grad_##s), ENTRY(bnf_fwd_bwd_##s), ENTRY(gather_logp_##s),          \
        ENTRY(naive_log_softmax_##s), ENTRY(naive_log_softmax_bwd_##s)

const Entry KERNELS[] = {
    DTYPE_ENTRIES(f32),   DTYPE_ENTRIES(f16),    DTYPE_ENTRIES(bf16),   ENTRY(naive_gather),
    ENTRY(naive_other_sum), ENTRY(naive_scalars), ENTRY(naive_dlogp),
};

}  // namespace

// 0: ran; 1: unknown kernel; 2: a block size or shared memory size the kernels do not support;
// 3: a 16-byte access to an address that is not 16-byte aligned (the device's
// CUDA_ERROR_MISALIGNED_ADDRESS).
extern "C" int bnf_emu_launch(const char* name, unsigned blocks, unsigned threads, unsigned shared_bytes,
                              void** args) {
    const Entry* entry = nullptr;
    for (const Entry& e : KERNELS) {
        if (std::strcmp(e.name, name) == 0) entry = &e;
    }
    if (entry == nullptr) return 1;
    if (threads != BNF_THREADS || shared_bytes > BNF_EMU_DYNAMIC_SHARED_BYTES) return 2;
    std::barrier<> barrier((std::ptrdiff_t)threads);
    emu_block_barrier = &barrier;
    emu_dynamic_shared_size = shared_bytes;
    emu_misaligned = false;
    std::vector<std::thread> pool;
    for (unsigned t = 0; t < threads; ++t) {
        pool.emplace_back([&, t] {
            threadIdx.x = t;
            blockDim.x = threads;
            for (unsigned b = 0; b < blocks; ++b) {
                blockIdx.x = b;
                entry->run(args);
                barrier.arrive_and_wait();  // the block is done before the next reuses shared memory
            }
        });
    }
    for (std::thread& t : pool) t.join();
    emu_block_barrier = nullptr;
    return emu_misaligned ? 3 : 0;
}

// Whether `name` is a kernel of the sources (cuModuleGetFunction's check).
extern "C" int bnf_emu_has_kernel(const char* name) {
    for (const Entry& e : KERNELS) {
        if (std::strcmp(e.name, name) == 0) return 1;
    }
    return 0;
}
