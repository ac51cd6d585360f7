# Thin wrapper over the CMake presets. `make` builds (release); `make run` and `make test` are the
# README's two commands and set everything up first.
JOBS ?= $(shell nproc)
# ccache hits across clones of the repo (CI builds a fresh clone on a machine that may have a warm
# cache): hash paths relative to the checkout, not the checkout's own location.
export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_NOHASHDIR := 1
# A bounded cache: CI machines have had only a few GiB of disk free, and the debug build itself
# takes ~2.3 GiB (one build's objects fit in this with room for the CUDA ones).
export CCACHE_MAXSIZE ?= 3G

.PHONY: all build daemons bootstrap run test debug cuda cuda-check fuzz clean

all: build

bootstrap:
	@scripts/bootstrap

build/release/build.ninja: CMakeLists.txt CMakePresets.json
	cmake --preset release

build: build/release/build.ninja
	cmake --build --preset release -j $(JOBS)

build/debug/build.ninja: CMakeLists.txt CMakePresets.json
	cmake --preset debug

debug: build/debug/build.ninja
	cmake --build --preset debug -j $(JOBS)

# Just the two daemons (what `make run` needs; tests and benchmarks are left out).
daemons: build/release/build.ninja
	cmake --build --preset release -j $(JOBS) --target cortex neuron

# Main job: set up, build, start cortex + neuron on localhost with the embedded default.
run: bootstrap daemons
	@scripts/run-local

# Every test CI runs (unit, integration, e2e) under ASan + UBSan.
test: bootstrap debug
	ctest --preset debug -j $(JOBS)

# Compile (not link, not run) the CUDA targets' object files; .ci/run calls this when nvcc is present.
cuda-check:
	cmake --preset cuda -DHELEXA_BENCHMARKS=OFF
	cmake --build --preset cuda -j $(JOBS) --target helexa_cuda_targets

cuda:
	cmake --preset cuda
	cmake --build --preset cuda -j $(JOBS)

fuzz:
	@scripts/fuzz

clean:
	rm -rf build
