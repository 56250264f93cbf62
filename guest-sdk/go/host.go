package reef

import (
	"fmt"
	"runtime"
	"unsafe"
)

// ObjectID identifies an object in the node's object store.
type ObjectID = uint64

// ObjectRef is an object and its size in bytes: an object argument, the result of Put, or
// (as a task result or an argument of Submit) an object passed by reference.
type ObjectRef struct {
	ID   ObjectID
	Size uint64
}

// ActorID identifies an actor (see CreateActor, LookupActor).
type ActorID uint64

// importRet is the return area of import calls (instances are single-threaded).
var importRet retArea

// LogLevel is the level of a Log line.
type LogLevel uint32

// Log levels.
const (
	LevelTrace LogLevel = iota
	LevelDebug
	LevelInfo
	LevelWarn
	LevelError
)

// Log writes a line to the task's log (drivers fetch it with logs).
func Log(level LogLevel, msg string) {
	hostLog(uint32(level), strPtr(msg), uint32(len(msg)))
	runtime.KeepAlive(msg)
}

// Logf formats and logs a line at LevelInfo.
func Logf(format string, a ...any) {
	Log(LevelInfo, fmt.Sprintf(format, a...))
}

// Put stores data as a new immutable object owned by the running task.
func Put(data []byte) (ObjectRef, error) {
	hostPut(bytesPtr(data), uint32(len(data)), importRet.ptr())
	runtime.KeepAlive(data)
	return importRet.liftResultObjectRef()
}

// PutFloat64s stores xs as an object of little-endian float64s (no intermediate copy),
// readable with View.Float64s.
func PutFloat64s(xs []float64) (ObjectRef, error) {
	if len(xs) == 0 {
		return Put(nil)
	}
	return Put(unsafe.Slice((*byte)(unsafe.Pointer(&xs[0])), 8*len(xs)))
}

// ObjectSize returns an object's size, waiting for it if it is a pending task result.
func ObjectSize(id ObjectID) (uint64, error) {
	hostObjectSize(id, importRet.ptr())
	return importRet.liftResultU64()
}

// Object returns a reference to object id (asking the host for its size, which waits
// for a pending task result).
func Object(id ObjectID) (ObjectRef, error) {
	size, err := ObjectSize(id)
	return ObjectRef{ID: id, Size: size}, err
}

// Get copies an object's bytes into the guest, waiting for it if it is pending. For
// large objects prefer MapView, which maps the object without copying.
func Get(id ObjectID) ([]byte, error) {
	size, err := ObjectSize(id)
	if err != nil {
		return nil, err
	}
	if size > 1<<32-1 {
		return nil, fmt.Errorf("object %d (%d bytes) does not fit in a 32-bit guest", id, size)
	}
	buf := make([]byte, size)
	// The host writes the object straight into buf (see abi.go).
	prepareTransfer(buf)
	hostGet(id, importRet.ptr())
	return importRet.liftResultBytes(buf)
}

// GetValue reads a MessagePack object, e.g. a task's result, into the value ptr points
// to (see Unmarshal).
func GetValue(id ObjectID, ptr any) error {
	data, err := Get(id)
	if err != nil {
		return err
	}
	if err := Unmarshal(data, ptr); err != nil {
		return fmt.Errorf("object %d: %w", id, err)
	}
	return nil
}

// rawArg is one argument: inline bytes or an object.
type rawArg struct {
	inline   []byte
	isObject bool
	object   ObjectRef
}

// toArg converts a Go value into an argument of Submit, CreateActor or Call: ObjectRef
// passes an object by reference, Raw raw bytes, anything else MessagePack (Marshal).
func toArg(v any) (rawArg, error) {
	switch x := v.(type) {
	case ObjectRef:
		return rawArg{isObject: true, object: x}, nil
	case *ObjectRef:
		if x != nil {
			return rawArg{isObject: true, object: *x}, nil
		}
	case Raw:
		return rawArg{inline: []byte(x)}, nil
	}
	b, err := Marshal(v)
	if err != nil {
		return rawArg{}, err
	}
	return rawArg{inline: b}, nil
}

func toArgs(vs []any) ([]rawArg, error) {
	out := make([]rawArg, len(vs))
	for i, v := range vs {
		a, err := toArg(v)
		if err != nil {
			return nil, &Error{Code: CodeBadArgument, Message: fmt.Sprintf("argument %d: %v", i, err)}
		}
		out[i] = a
	}
	return out, nil
}

// Submit submits task function of the calling module with args (see toArg for how each
// is passed) and returns the id of its result object: read it with Get (or MapView).
func Submit(function string, args ...any) (ObjectID, error) {
	return SubmitTo("", function, args...)
}

// SubmitTo submits a task of another module, given by its hash ("" = the calling module).
func SubmitTo(module, function string, args ...any) (ObjectID, error) {
	raw, err := toArgs(args)
	if err != nil {
		return 0, err
	}
	words := lowerArgs(raw)
	hostSubmit(strPtr(module), uint32(len(module)), strPtr(function), uint32(len(function)),
		words64Ptr(words), uint32(len(raw)), importRet.ptr())
	runtime.KeepAlive(raw)
	runtime.KeepAlive(words)
	runtime.KeepAlive(module)
	runtime.KeepAlive(function)
	return importRet.liftResultU64()
}

// CreateActor creates an actor of class (of the calling module, or of module when
// module is not ""); a non-empty name makes it findable with LookupActor.
func CreateActor(module, class, name string, args ...any) (ActorID, error) {
	raw, err := toArgs(args)
	if err != nil {
		return 0, err
	}
	words := lowerArgs(raw)
	var isSome uint32
	if name != "" {
		isSome = 1
	}
	hostActorCreate(strPtr(module), uint32(len(module)), strPtr(class), uint32(len(class)),
		words64Ptr(words), uint32(len(raw)), isSome, strPtr(name), uint32(len(name)), importRet.ptr())
	runtime.KeepAlive(raw)
	runtime.KeepAlive(words)
	runtime.KeepAlive(module)
	runtime.KeepAlive(class)
	runtime.KeepAlive(name)
	id, err := importRet.liftResultU64()
	return ActorID(id), err
}

// LookupActor finds a named actor.
func LookupActor(name string) (ActorID, error) {
	hostActorLookup(strPtr(name), uint32(len(name)), importRet.ptr())
	runtime.KeepAlive(name)
	id, err := importRet.liftResultU64()
	return ActorID(id), err
}

// Call calls method of the actor with args; returns the id of the result object.
func (a ActorID) Call(method string, args ...any) (ObjectID, error) {
	raw, err := toArgs(args)
	if err != nil {
		return 0, err
	}
	words := lowerArgs(raw)
	hostActorCall(uint64(a), strPtr(method), uint32(len(method)), words64Ptr(words), uint32(len(raw)), importRet.ptr())
	runtime.KeepAlive(raw)
	runtime.KeepAlive(words)
	runtime.KeepAlive(method)
	return importRet.liftResultU64()
}
