# weir - two commands on a fresh Debian 12 machine:
#   make run    install packages, build, start `weir standalone` on the embedded defaults
#   make test   install test packages, build (plain and ASan+UBSan), run the whole suite
SHELL := /bin/bash
BUILD ?= build
BUILD_SAN ?= build-san
JOBS ?= $(shell nproc)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

DEB_BUILD := build-essential cmake pkg-config libyaml-dev libjansson-dev libuv1-dev \
	libsqlite3-dev libpq-dev libcurl4-openssl-dev zlib1g-dev libzstd-dev liblz4-dev \
	libpg-query-dev libsodium-dev libedit-dev libmicrohttpd-dev libssl-dev tzdata
DEB_TEST := libcmocka-dev postgresql sqlite3 python3 nodejs npm chromium

.PHONY: all deps test-deps build build-san run test clean

all: build

# Installs only what is missing, so repeated runs need no network.
deps:
	@missing=$$(for p in $(DEB_BUILD); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then echo "installing: $$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; fi

test-deps: deps
	@missing=$$(for p in $(DEB_TEST); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || command -v $$p >/dev/null || echo $$p; done); \
	if [ -n "$$missing" ]; then echo "installing: $$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; fi

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j$(JOBS)

build-san: deps
	cmake -S . -B $(BUILD_SAN) -DCMAKE_BUILD_TYPE=Sanitize >/dev/null
	cmake --build $(BUILD_SAN) -j$(JOBS)

run: build
	WEIR_CORE__DAGS_FOLDER="$${WEIR_CORE__DAGS_FOLDER:-$(CURDIR)/dags}" ./$(BUILD)/weir standalone

# ctest starts and stops the throwaway PostgreSQL cluster itself (fixture tests pg.start /
# pg.stop), so an interrupted run leaves nothing behind but a temp folder.
test: test-deps build build-san
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)
	cd $(BUILD_SAN) && ctest --output-on-failure -j$(JOBS) -LE bench

clean:
	rm -rf $(BUILD) $(BUILD_SAN)
