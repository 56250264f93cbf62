package reef

import "unsafe"

// # The WASI adapter's memory
//
// A Go module imports WASI preview 1; the host turns it into a component with the
// preview-1 adapter, which needs two 64 KiB blocks of guest memory (its stack and its
// state) and asks for them at the first WASI call. That call happens inside _initialize,
// while the Go runtime is starting, so the Go cabi_realloc cannot serve it (Go's
// wasmexport functions trap before the runtime is up). Nor can memory.grow
// (`--realloc-via-memory-grow`): Go's heap assumes it owns all memory past its data, so a
// page grown by someone else is later handed out by the Go allocator and both overwrite
// each other.
//
// So the adapter gets its blocks from adapterArena, a variable in the module's static
// data. build.sh finds it by its marker and appends a small wasm function,
// `cabi_realloc_adapter`, that bump-allocates from it without running any Go code;
// wit-component gives the adapter that function instead of cabi_realloc.

// adapterArenaMarker starts adapterArena; build.sh looks for it in the data segments.
// Code must not use it: the marker has to appear exactly once in the module.
const adapterArenaMarker = "reef-go-wasi-adapter-arena/v1:::"

// adapterArenaSize holds the adapter's stack and state (64 KiB each) plus alignment slack.
const adapterArenaSize = 4 << 16

// adapterArena is initialised with the marker, so that it lands in a data segment (the
// linker leaves the zero bytes out of the module).
var adapterArena = [adapterArenaSize]byte{
	'r', 'e', 'e', 'f', '-', 'g', 'o', '-', 'w', 'a', 's', 'i', '-', 'a', 'd', 'a',
	'p', 't', 'e', 'r', '-', 'a', 'r', 'e', 'n', 'a', '/', 'v', '1', ':', ':', ':',
}

// adapterArenaAddr is adapterArena's address; taking it keeps the variable in the module
// (the adapter owns its contents: Go code never reads or writes them).
var adapterArenaAddr uintptr

func init() {
	adapterArenaAddr = uintptr(unsafe.Pointer(&adapterArena))
}
