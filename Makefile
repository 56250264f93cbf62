# Entry points: `make demo`, `make test`, `make bench`, `make bench-ray` (see README.md).
# Everything builds in release: one build of wasmtime serves tests, demo and benchmarks.
CARGO ?= cargo

.PHONY: chaos deps host guests build demo test sdk-test dashboard-test check-cycles bench bench-ray fmt clean

deps:
	scripts/install-deps.sh

# The host first: Python guests are finished by `host build strip-imports`.
host: deps
	$(CARGO) build --release -p reef-host

guests: host
	scripts/build-guests.sh

build: guests
	$(CARGO) build --release --workspace --all-targets

demo: build
	./target/release/demo
	@echo "Dashboard: http://127.0.0.1:8265/ on a running head (\`host start --head\` prints it); log in with the cluster token (<data-dir>/token)"

test: build check-cycles
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --release --no-deps --workspace
	$(CARGO) test --release --workspace
	# The guest SDK is its own workspace (it targets wasm32); its unit tests run natively.
	CARGO_TARGET_DIR=target/guest-sdk-test $(CARGO) test --release --offline --manifest-path guest-sdk/rust/Cargo.toml
	# The C SDK's canonical-ABI offsets against tests/golden/abi-layouts.json.
	guest-sdk/c/tests/abi_layout_test.sh
	# The TypeScript driver, against real nodes, with the cross-language pipeline.
	cd driver/ts && npm ci --no-audit --no-fund && npm run build && REEF_PIPELINE_REQUIRED=1 npm test
	$(MAKE) sdk-test
	$(MAKE) dashboard-test
	python3 scripts/test_check_cycles.py

# The Python and JavaScript guest SDKs' unit tests, run natively (no wasm). Their tools
# come from the repository's venv (target/toolchains/venv) and guest-sdk/js/node_modules.
sdk-test:
	guest-sdk/python/install.sh
	target/toolchains/venv/bin/python -m unittest discover -s guest-sdk/python/tests
	guest-sdk/js/install.sh
	cd guest-sdk/js && npm test

# The dashboard in headless Chromium (puppeteer-core, pinned in tests/dashboard) against a
# head and a worker running a DAG with a failing task; screenshots land in target/dashboard/.
dashboard-test: build
	cd driver/ts && npm ci --no-audit --no-fund && npm run build
	cd tests/dashboard && npm ci --no-audit --no-fund && timeout 300 npm test

# host/src must have no module import cycle (prints each cycle found).
check-cycles:
	python3 scripts/check-cycles.py host/src

# The `remote` group runs the TS driver too (driver/ts/examples/remote_bench.ts), when node is installed.
bench: build
	@if command -v npm >/dev/null; then \
		cd driver/ts && { [ -d node_modules ] || npm ci --no-audit --no-fund; } && \
		{ [ -f dist-test/examples/remote_bench.js ] && \
		  [ -z "$$(find src examples proto -newer dist-test/examples/remote_bench.js | head -1)" ] || \
		  npm run build; }; \
	else echo "bench: npm is not installed: the TS driver rows are skipped (scripts/install-deps.sh)"; fi
	$(CARGO) run --release -p reef-benches --bin bench

# Reef and Ray side by side: installs Ray and numpy into target/bench-ray/venv
# (scripts/install-ray.sh), then runs the same workloads on both. Not part of `make test`.
# `make bench-ray GROUPS="seed mapreduce"` runs only those groups of rows.
bench-ray: build
	python="$$(scripts/install-ray.sh)" && \
		REEF_RAY_PYTHON="$$python" $(CARGO) run --release -p reef-benches --bin bench-ray -- $(GROUPS)

# The chaos tests alone (they are part of `make test` too).
chaos: build
	$(CARGO) test --release -p reef-tests --test chaos_dag --test chaos_lineage

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
