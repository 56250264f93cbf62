//go:build wasip1 && wasm

package reef

// The exports of interface reef:runtime/guest@0.2.0 and the canonical-ABI helpers
// cabi_realloc and cabi_post_*. A program that imports this package exports them.

//go:wasmexport reef:runtime/guest@0.2.0#describe
func wasmDescribe() uint32 { return exportDescribe() }

//go:wasmexport cabi_post_reef:runtime/guest@0.2.0#describe
func wasmPostDescribe(ret uint32) { postReturn() }

//go:wasmexport reef:runtime/guest@0.2.0#run-task
func wasmRunTask(namePtr, nameLen, argsPtr, argsLen uint32) uint32 {
	return exportRunTask(namePtr, nameLen, argsPtr, argsLen)
}

//go:wasmexport cabi_post_reef:runtime/guest@0.2.0#run-task
func wasmPostRunTask(ret uint32) { postReturn() }

//go:wasmexport reef:runtime/guest@0.2.0#actor-init
func wasmActorInit(classPtr, classLen, argsPtr, argsLen uint32) uint32 {
	return exportActorInit(classPtr, classLen, argsPtr, argsLen)
}

//go:wasmexport cabi_post_reef:runtime/guest@0.2.0#actor-init
func wasmPostActorInit(ret uint32) { postReturn() }

//go:wasmexport reef:runtime/guest@0.2.0#actor-call
func wasmActorCall(methodPtr, methodLen, argsPtr, argsLen uint32) uint32 {
	return exportActorCall(methodPtr, methodLen, argsPtr, argsLen)
}

//go:wasmexport cabi_post_reef:runtime/guest@0.2.0#actor-call
func wasmPostActorCall(ret uint32) { postReturn() }

// cabi_realloc never allocates on the Go heap in the common case (see abi.go).
//
//go:wasmexport cabi_realloc
func wasmRealloc(oldPtr, oldSize, align, newSize uint32) uint32 {
	return uint32(realloc(uintptr(oldPtr), uintptr(oldSize), uintptr(align), uintptr(newSize)))
}
