# The two commands a newcomer needs: `make run` and `make test`. Both install what they need.
SHELL := /bin/bash
export PATH := $(CURDIR)/end2end/node_modules/.bin:$(HOME)/.cargo/bin:$(PATH)
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

.PHONY: run test tools build lint test-rust test-e2e

## run: build, then start Tandem at http://127.0.0.1:3000 with the HubSpot, Pipedrive and Zoho CRM sandboxes
run: build
	scripts/run.sh

## test: the format and lint checks, then every test (Rust on SQLite and Postgres, then Chromium end-to-end)
test: lint test-rust test-e2e

tools:
	scripts/ensure-tools.sh

# The sandbox is built with the flag cargo-leptos gives the server (always-erase-components), so
# the two share their dependencies' builds.
build: tools
	cargo leptos build --release --precompress
	RUSTFLAGS="--cfg erase_components" cargo build --release -p sandbox

# rustfmt.toml holds the house width; clippy's warnings are errors (the browser crate is checked
# for its own target: on the host it would be built with the server's features too).
lint: tools
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --exclude frontend -- -D warnings
	cargo clippy -p frontend --target wasm32-unknown-unknown -- -D warnings

test-rust: tools
	scripts/ensure-postgres.sh
	cargo test --workspace --exclude frontend

test-e2e: build
	scripts/ensure-tools.sh browser
	cd end2end && npx playwright test
