# The two commands: `make run` and `make test`. Both install what is missing first.
.PHONY: all setup build run test check asan bench format clean

JOBS ?= $(shell nproc)
DATA ?= ./var
API ?= 127.0.0.1:3452
GATEWAY ?= 127.0.0.1:8080

all: build

setup:
	@scripts/setup

build: setup
	@cmake --preset release >/dev/null
	@cmake --build --preset release -j $(JOBS)

# Start the server on its embedded defaults: SQLite under ./var, the in-process local
# agent, the API on 127.0.0.1:3452 and the gateway on 127.0.0.1:8080.
run: build
	./build/release/bin/slipway server --data $(DATA) --api $(API) --gateway $(GATEWAY)

# Every test: unit tests, the same unit tests under ASan+UBSan, and the end-to-end suites.
test: build asan
	cd build/release && ctest --output-on-failure --parallel 2

# Unit tests only, for quick iteration.
check: build
	cd build/release && ctest --output-on-failure -L unit

asan: setup
	@cmake --preset asan >/dev/null
	@cmake --build --preset asan -j $(JOBS)
	cd build/asan && ctest --output-on-failure -L unit

bench: setup
	@scripts/setup --bench
	@cmake --preset release >/dev/null
	@cmake --build --preset release -j $(JOBS)
	bench/run-all

format:
	git ls-files '*.cpp' '*.h' | xargs clang-format -i

clean:
	rm -rf build
