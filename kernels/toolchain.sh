# Sourced by build_ptx.sh and ci.sh: installs the pinned CUDA compiler from PyPI into
# kernels/.toolchain (ignored by git) unless it is already there, and sets NVCC, PTXAS and
# CUDA_INCLUDE. Pinned to CUDA 13.0: its nvcc emits PTX ISA 9.0, the newest a CUDA 13.0 driver
# JITs (the PyPI `nvidia-cuda-nvcc` package has no 12.x releases with nvcc itself;
# `nvidia-cuda-nvcc-cu12` ships only ptxas).
CUDA_PIP_PINS="nvidia-cuda-nvcc==13.0.88 nvidia-nvvm==13.0.88 nvidia-cuda-crt==13.0.88 nvidia-cuda-runtime==13.0.88 nvidia-cuda-cccl==13.0.85"
KERNELS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TOOLCHAIN="$KERNELS_DIR/.toolchain"
CUDA_HOME_PIP="$TOOLCHAIN/nvidia/cu13"
if [ "$(cat "$TOOLCHAIN/pins" 2>/dev/null)" != "$CUDA_PIP_PINS" ]; then
    rm -rf "$TOOLCHAIN"
    # --no-deps: every package the compiler needs is pinned above, nothing floats. --target
    # installs beside the repository, outside any (externally managed) Python environment.
    if ! PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check \
        --no-deps --target "$TOOLCHAIN" $CUDA_PIP_PINS; then
        echo "kernels/toolchain.sh: could not install $CUDA_PIP_PINS from PyPI" >&2
        rm -rf "$TOOLCHAIN"
        return 1 2> /dev/null || exit 1
    fi
    echo "$CUDA_PIP_PINS" > "$TOOLCHAIN/pins"
fi
NVCC="$CUDA_HOME_PIP/bin/nvcc"
PTXAS="$CUDA_HOME_PIP/bin/ptxas"
CUDA_INCLUDE="$CUDA_HOME_PIP/include"
