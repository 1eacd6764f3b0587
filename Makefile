# Liggare. `make demo` runs the whole system on this machine; `make test` runs
# every test under the race detector. See README.md.

GO            ?= go
BIN           := bin
STATICCHECK   := honnef.co/go/tools/cmd/staticcheck@v0.8.2
BINARIES      := liggare-server liggare-terminal liggare-demo liggare-bridge
TEST_TIMEOUT  ?= 45m
BENCH         ?= .
BENCHTIME     ?= 1x

.PHONY: all build test demo lint bench fuzz load clean

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./server/cmd/liggare-server ./server/cmd/liggare-demo ./terminal/cmd/liggare-terminal ./firmware-bridge/cmd/liggare-bridge

# Every test, under -race, against real PostgreSQL clusters the tests start
# themselves (or PGTEST_URL), real bbolt files and real sockets.
test:
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...

demo: build
	$(BIN)/liggare-demo $(DEMO_FLAGS)

lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

# Benchmarks: figures and how they were taken are recorded in docs/benchmarks.md.
bench:
	$(GO) test -run='^$$' -bench='$(BENCH)' -benchtime=$(BENCHTIME) ./...

# The fleet load generator against a private PostgreSQL and the real server:
# make load LOAD_FLAGS='--scenario storm'. Figures: docs/benchmarks.md.
LOAD_FLAGS ?= --scenario peak
load:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./server/cmd/liggare-server ./terminal/cmd/liggare-load
	$(BIN)/liggare-load --server-bin $(BIN)/liggare-server $(LOAD_FLAGS)

# A short run of every fuzzer (FUZZTIME each).
FUZZTIME ?= 30s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

clean:
	rm -rf $(BIN)
