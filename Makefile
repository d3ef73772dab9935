# GSKO — make targets. `make help` lists them.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: help demo test services bench lint fmt check-config

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

demo: ## run everything in one process (SQLite, in-process bus, simulated RADIX) and serve the query API on 127.0.0.1:8080
	$(CARGO) run --release -p gsko -- demo

test: services ## run the whole test suite against real RabbitMQ and PostgreSQL (starts or installs them first)
	$(CARGO) test --workspace --no-fail-fast

services: ## make sure PostgreSQL, RabbitMQ and xmllint are installed and running
	@bash scripts/ensure-services.sh

BENCH_TAXPAYERS ?= 100000
BENCH_PAYMENTS ?= 2000
BENCH_STATEMENT_LINES ?= 50000
BENCH_LETTERS ?= 2000
BENCH_EZD_LETTERS ?= 500
BENCH_QUERY_RESIDENTS ?= 1000000
BENCH_LOGINS ?= 200
bench: services ## import 100,000 generated taxpayers end to end, then the payment benchmarks (gateway notifications → booked, a 50,000-line MT940 statement), ePUAP letters and EZD registrations and status lag, resident queries with 1,000,000 residents in the view, logins; RabbitMQ+Postgres, then embedded; prints tables
	@# a fresh virtual host: the benchmark never meets a deployment's or an earlier run's queues
	-@rabbitmqctl -q delete_vhost gsko-bench >/dev/null 2>&1
	@rabbitmqctl -q add_vhost gsko-bench && rabbitmqctl -q set_permissions -p gsko-bench guest '.*' '.*' '.*'
	$(CARGO) run --release -p gsko -- bench --taxpayers $(BENCH_TAXPAYERS) --amqp-url amqp://guest:guest@127.0.0.1:5672/gsko-bench
	$(CARGO) run --release -p gsko -- bench payments --payments $(BENCH_PAYMENTS) --statement-lines $(BENCH_STATEMENT_LINES) --amqp-url amqp://guest:guest@127.0.0.1:5672/gsko-bench
	$(CARGO) run --release -p gsko -- bench letters --letters $(BENCH_LETTERS) --amqp-url amqp://guest:guest@127.0.0.1:5672/gsko-bench
	$(CARGO) run --release -p gsko -- bench ezd --letters $(BENCH_EZD_LETTERS) --amqp-url amqp://guest:guest@127.0.0.1:5672/gsko-bench
	$(CARGO) run --release -p gsko -- bench query --residents $(BENCH_QUERY_RESIDENTS)
	$(CARGO) run --release -p gsko -- bench login --logins $(BENCH_LOGINS)

lint: ## formatting and clippy
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt: ## format the code
	$(CARGO) fmt --all

check-config: ## validate the example production configuration
	$(CARGO) run -q -p gsko -- check-config config/example/gsko.toml
