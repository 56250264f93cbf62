package reef

// Canonical-ABI memory layouts of the reef:runtime types on wasm32 (little-endian, 32-bit
// pointers), the allocator behind cabi_realloc, and lifting/lowering helpers. The layouts
// are those of guest-sdk/rust/src/abi.rs:
//
//   - string / list<T>: ptr u32 @0, len u32 @4 (size 8, align 4)
//   - arg: disc u8 @0 (0 inline, 1 object); inline ptr @8, len @12; object id u64 @8, size u64 @16 (size 24, align 8)
//   - output: disc u8 @0 (0 bytes, 1 object); bytes ptr @8, len @12; object id u64 @8 (size 16, align 8)
//   - failure: code u8 @0, message string @4 (size 12, align 4)
//   - result<output, failure>: disc @0; ok output @8; err failure @8 (size 24, align 8)
//   - result<_, failure> and result<list<u8>, failure>: disc @0; payload @4 (size 16, align 4)
//   - result<u64, failure>: disc @0; ok u64 @8; err failure @8 (size 24, align 8)
//   - result<object-ref, failure>: disc @0; ok id @8, size @16; err failure @8 (size 24, align 8)
//   - module-info: sdk string @0, tasks list @8, actors list @16 (size 24, align 4)
//   - actor-class: name string @0, methods list @8 (size 16, align 4)
//
// The constants below name these offsets; reef_test.go checks them against
// tests/golden/abi-layouts.json, which the host's tests compute from wit/.
//
// # Memory the host writes into (cabi_realloc)
//
// The host calls cabi_realloc to place strings and lists it passes to the guest: the
// parameters of every export and the results of imports such as get. Two traps of Go:
//
//   - The WASI adapter may call cabi_realloc before the Go runtime is up; the host
//     componentizes Go modules with realloc-via-memory-grow, so the adapter never does.
//   - While the host is inside cabi_realloc the guest may not call any import. A Go heap
//     allocation can start a garbage collection, which reads the clock (a WASI import)
//     and traps ("cannot leave component instance"). So cabi_realloc never allocates on
//     the Go heap in the common case: it bumps through a static arena, or hands out a
//     buffer the SDK prepared in Go code before calling an import (get prepares a buffer
//     of the object's exact size, which then becomes the result: no second copy).
//
// The SDK copies what it keeps out of the arena right after each transfer and resets the
// arena; cabi_post_* resets it too. Only a transfer larger than the static arena falls
// back to the Go heap.

import (
	"unsafe"
)

// Canonical-ABI offsets and sizes (see the list above).
const (
	argSize          = 24 // arg: 24 bytes, 8-aligned
	variantPayload   = 8  // payload offset of arg and output
	failureMessage   = 4  // failure: code u8 @0, message @4
	widePayload      = 8  // result whose ok holds a u64 (u64, object-ref, output)
	narrowPayload    = 4  // result<_, failure> and result<list<u8>, failure>
	retAreaSize      = 24 // the largest result
	retAreaAlignment = 8
)

// arenaSize is the size of the static arena for host-to-guest transfers.
const arenaSize = 1 << 20

var (
	// arenaStatic is the bump arena (uint64s, so it is 8-aligned).
	arenaStatic [arenaSize / 8]uint64
	// arenaOff is the offset of the first free byte in arenaStatic.
	arenaOff uintptr
	// arenaPrepared is a buffer prepared for the next transfer (see prepareTransfer).
	arenaPrepared []byte
	// arenaOverflow keeps Go-heap fallback allocations alive until the next reset.
	arenaOverflow [][]byte
	// arenaFallbacks counts transfers that did not fit the arena (for tests and tuning).
	arenaFallbacks int
)

func alignUp(p, align uintptr) uintptr {
	return (p + align - 1) &^ (align - 1)
}

// realloc implements cabi_realloc. Addresses are linear-memory addresses.
func realloc(oldPtr, oldSize, align, newSize uintptr) uintptr {
	if align == 0 {
		align = 1
	}
	if newSize == 0 {
		// A non-null, aligned address for an empty allocation; nothing to free later.
		return align
	}
	var p uintptr
	if n := uintptr(len(arenaPrepared)); n != 0 && n >= newSize && align <= 8 && oldSize == 0 {
		// Go heap blocks of 8 bytes or more are 8-aligned.
		p = uintptr(unsafe.Pointer(&arenaPrepared[0]))
		arenaPrepared = nil
	} else {
		base := uintptr(unsafe.Pointer(&arenaStatic[0]))
		start := alignUp(base+arenaOff, align)
		if start+newSize <= base+arenaSize {
			arenaOff = start + newSize - base
			p = start
		} else {
			// Larger than the arena: the Go heap (see the comment at the top).
			arenaFallbacks++
			buf := make([]byte, newSize+align)
			arenaOverflow = append(arenaOverflow, buf)
			p = alignUp(uintptr(unsafe.Pointer(&buf[0])), align)
		}
	}
	if oldSize != 0 {
		n := oldSize
		if newSize < n {
			n = newSize
		}
		copy(unsafe.Slice((*byte)(unsafe.Pointer(p)), n), unsafe.Slice((*byte)(unsafe.Pointer(oldPtr)), n))
	}
	return p
}

// prepareTransfer makes the next cabi_realloc of up to len(buf) bytes return buf.
func prepareTransfer(buf []byte) {
	if len(buf) >= 8 {
		arenaPrepared = buf
	}
}

// arenaReset frees everything the host placed in the arena.
func arenaReset() {
	arenaOff = 0
	arenaPrepared = nil
	arenaOverflow = nil
}

// mem returns the n bytes of linear memory at addr (no copy).
func mem(addr uintptr, n uint32) []byte {
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(addr)), n)
}

// inStaticArena reports whether addr lies in the static arena (reused after a reset).
func inStaticArena(addr uintptr) bool {
	base := uintptr(unsafe.Pointer(&arenaStatic[0]))
	return addr >= base && addr < base+arenaSize
}

// copyBytes copies n bytes at addr into a fresh Go slice.
func copyBytes(addr uintptr, n uint32) []byte {
	out := make([]byte, n)
	copy(out, mem(addr, n))
	return out
}

// retArea is a return area large and aligned enough for every result in the interface.
type retArea [retAreaSize / 8]uint64

func (r *retArea) bytes() *[retAreaSize]byte { return (*[retAreaSize]byte)(unsafe.Pointer(r)) }
func (r *retArea) ptr() unsafe.Pointer       { return unsafe.Pointer(r) }
func (r *retArea) u8(off int) byte           { return r.bytes()[off] }
func (r *retArea) u32(off int) uint32 {
	b := r.bytes()
	return uint32(b[off]) | uint32(b[off+1])<<8 | uint32(b[off+2])<<16 | uint32(b[off+3])<<24
}
func (r *retArea) u64(off int) uint64 { return uint64(r.u32(off)) | uint64(r.u32(off+4))<<32 }
func (r *retArea) putU32(off int, v uint32) {
	b := r.bytes()
	b[off], b[off+1], b[off+2], b[off+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}
func (r *retArea) putU64(off int, v uint64) {
	r.putU32(off, uint32(v))
	r.putU32(off+4, uint32(v>>32))
}

// addr32 is the wasm32 address of p as the canonical ABI stores it.
func addr32(p unsafe.Pointer) uint32 { return uint32(uintptr(p)) }

// bytesPtr is the address of b's first byte (nil for an empty slice).
func bytesPtr(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(&b[0])
}

// strPtr is the address of s's first byte (nil for "").
func strPtr(s string) unsafe.Pointer {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Pointer(unsafe.StringData(s))
}

// takeString lifts a string the host placed in the arena (copied; invalid UTF-8 is kept as is).
func takeString(ptr, n uint32) string {
	return string(mem(uintptr(ptr), n))
}

// takeArgs lifts a list<arg> the host placed in the arena, copying inline bytes out.
func takeArgs(ptr, n uint32) []rawArg {
	args := make([]rawArg, n)
	for i := uint32(0); i < n; i++ {
		words := (*[3]uint64)(unsafe.Pointer(uintptr(ptr) + uintptr(i)*argSize))
		if byte(words[0]) == 0 {
			ptr, n := uintptr(uint32(words[1])), uint32(words[1]>>32)
			if inStaticArena(ptr) {
				args[i] = rawArg{inline: copyBytes(ptr, n)}
			} else {
				// A Go-heap fallback block: adopt it (the slice keeps it alive).
				args[i] = rawArg{inline: mem(ptr, n)}
			}
		} else {
			args[i] = rawArg{isObject: true, object: ObjectRef{ID: words[1], Size: words[2]}}
		}
	}
	return args
}

// lowerArgs lays out args as a list<arg> array for an import call. Inline bytes are
// referenced, not copied: args must stay alive during the call.
func lowerArgs(args []rawArg) []uint64 {
	out := make([]uint64, 0, 3*len(args)+1)
	for _, a := range args {
		if a.isObject {
			out = append(out, 1, a.object.ID, a.object.Size)
		} else {
			out = append(out, 0, uint64(addr32(bytesPtr(a.inline)))|uint64(uint32(len(a.inline)))<<32, 0)
		}
	}
	return out
}

// words64Ptr is the address of a []uint64's first element (nil if empty).
func words64Ptr(w []uint64) unsafe.Pointer {
	if len(w) == 0 {
		return nil
	}
	return unsafe.Pointer(&w[0])
}

// liftFailure reads the failure record at off in r (its message copied out of the arena).
func (r *retArea) liftFailure(off int) error {
	code := Code(r.u8(off))
	if int(code) >= len(codeNames) {
		// A code this SDK does not know (a newer host) still fails the call.
		code = CodeInternal
	}
	msg := takeString(r.u32(off+failureMessage), r.u32(off+failureMessage+4))
	return &Error{Code: code, Message: msg}
}

// putFailure writes err as a failure record at off; returns the message, which must stay alive.
func (r *retArea) putFailure(off int, err error) any {
	msg := err.Error()
	r.bytes()[off] = byte(CodeOf(err))
	r.putU32(off+failureMessage, addr32(strPtr(msg)))
	r.putU32(off+failureMessage+4, uint32(len(msg)))
	return msg
}

// liftResultU64 reads a result<u64, failure> an import wrote.
func (r *retArea) liftResultU64() (uint64, error) {
	defer arenaReset()
	if r.u8(0) == 0 {
		return r.u64(widePayload), nil
	}
	return 0, r.liftFailure(widePayload)
}

// liftResultObjectRef reads a result<object-ref, failure> an import wrote.
func (r *retArea) liftResultObjectRef() (ObjectRef, error) {
	defer arenaReset()
	if r.u8(0) == 0 {
		return ObjectRef{ID: r.u64(widePayload), Size: r.u64(widePayload + 8)}, nil
	}
	return ObjectRef{}, r.liftFailure(widePayload)
}

// liftResultBytes reads a result<list<u8>, failure> an import wrote. prepared is the
// buffer given to prepareTransfer (returned without a copy when the host used it).
func (r *retArea) liftResultBytes(prepared []byte) ([]byte, error) {
	defer arenaReset()
	if r.u8(0) != 0 {
		return nil, r.liftFailure(narrowPayload)
	}
	ptr, n := r.u32(narrowPayload), r.u32(narrowPayload+4)
	if n == 0 {
		return []byte{}, nil
	}
	if len(prepared) >= int(n) && addr32(unsafe.Pointer(&prepared[0])) == ptr {
		return prepared[:n], nil
	}
	return copyBytes(uintptr(ptr), n), nil
}

// output is what a task or method returns: bytes, or an object by id.
type output struct {
	bytes    []byte
	isObject bool
	object   uint64
}

// lowerResultOutput writes a result<output, failure>; returns what must stay alive.
func (r *retArea) lowerResultOutput(out output, err error) any {
	*r = retArea{}
	if err != nil {
		r.bytes()[0] = 1
		return r.putFailure(widePayload, err)
	}
	payload := widePayload + variantPayload
	if out.isObject {
		r.bytes()[widePayload] = 1
		r.putU64(payload, out.object)
		return nil
	}
	r.putU32(payload, addr32(bytesPtr(out.bytes)))
	r.putU32(payload+4, uint32(len(out.bytes)))
	return out.bytes
}

// lowerResultUnit writes a result<_, failure>; returns what must stay alive.
func (r *retArea) lowerResultUnit(err error) any {
	*r = retArea{}
	if err == nil {
		return nil
	}
	r.bytes()[0] = 1
	return r.putFailure(narrowPayload, err)
}

// stringList lays out a list<string> of strings: (ptr, len) pairs.
func stringList(names []string) []uint32 {
	out := make([]uint32, 0, 2*len(names)+1)
	for _, s := range names {
		out = append(out, addr32(strPtr(s)), uint32(len(s)))
	}
	return out
}

func words32Ptr(w []uint32) unsafe.Pointer {
	if len(w) == 0 {
		return nil
	}
	return unsafe.Pointer(&w[0])
}

// lowerModuleInfo writes a module-info record; returns what must stay alive.
func (r *retArea) lowerModuleInfo(sdk string, tasks []string, classes []string, methods [][]string) any {
	taskList := stringList(tasks)
	methodLists := make([][]uint32, len(classes))
	classList := make([]uint32, 0, 4*len(classes)+1)
	for i, c := range classes {
		methodLists[i] = stringList(methods[i])
		classList = append(classList, addr32(strPtr(c)), uint32(len(c)), addr32(words32Ptr(methodLists[i])), uint32(len(methods[i])))
	}
	*r = retArea{}
	r.putU32(0, addr32(strPtr(sdk)))
	r.putU32(4, uint32(len(sdk)))
	r.putU32(8, addr32(words32Ptr(taskList)))
	r.putU32(12, uint32(len(tasks)))
	r.putU32(16, addr32(words32Ptr(classList)))
	r.putU32(20, uint32(len(classes)))
	return []any{sdk, tasks, classes, methods, taskList, methodLists, classList}
}
