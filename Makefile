# Thin wrapper over CMake and the scripts, for people who type `make`.
# The quick start does not need it: scripts/demo and scripts/test work on a machine without make.
.PHONY: all build demo test quick-test bench quality format clean

all: build

build:
	scripts/build

demo:
	scripts/demo

test:
	scripts/test

quick-test:
	PIQC_QUICK=1 scripts/test

bench: build
	build/bench/bench_quant
	bench/bench_models.sh

quality: build
	scripts/quality-report --write

format:
	git ls-files '*.c' '*.h' | xargs clang-format -i

clean:
	rm -rf build build-asan build-fuzz out
