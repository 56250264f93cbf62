package reef

import (
	"fmt"
	"unsafe"
)

// ViewAlign is the alignment the host requires of a view buffer (64 KiB).
const ViewAlign = 65536

// View is a zero-copy view of an object: the host maps the object's pages copy-on-write
// over a 64 KiB-aligned guest buffer. Reads touch the store's pages directly; writes land
// in private pages and never change the object.
//
// A view is valid until Release or the end of the task or method call that mapped it
// (the SDK releases views still mapped then); slices returned by its accessors must not
// be used after that.
type View struct {
	// alloc is the Go allocation holding the buffer; buf is its aligned part.
	alloc []byte
	buf   []byte
	size  int
	id    ObjectID
}

// live holds the views mapped in this call, released at its end.
var live = map[*View]struct{}{}

// viewCapacity is n rounded up to a multiple of ViewAlign, or false on overflow.
func viewCapacity(n uint64) (int, bool) {
	rounded := (n + ViewAlign - 1) / ViewAlign * ViewAlign
	if n > 1<<32-ViewAlign || int(rounded) < 0 {
		return 0, false
	}
	return int(rounded), true
}

// MapView maps object (whose Size must be right, as in an argument or a Put result).
func MapView(object ObjectRef) (*View, error) {
	if object.Size == 0 {
		return &View{id: object.ID}, nil
	}
	capacity, ok := viewCapacity(object.Size)
	if !ok {
		return nil, fmt.Errorf("object %d (%d bytes) is too large for a view", object.ID, object.Size)
	}
	// Over-allocate by one alignment unit and use the aligned part. Go's heap never
	// moves objects, and a []byte is never scanned by the GC.
	alloc := make([]byte, capacity+ViewAlign)
	start := alignUp(uintptr(unsafe.Pointer(&alloc[0])), ViewAlign) - uintptr(unsafe.Pointer(&alloc[0]))
	buf := alloc[start : start+uintptr(capacity) : start+uintptr(capacity)]
	hostMapView(object.ID, unsafe.Pointer(&buf[0]), uint32(capacity), importRet.ptr())
	size, err := importRet.liftResultU64()
	if err != nil {
		return nil, withContext(err, fmt.Sprintf("map-view of object %d", object.ID))
	}
	v := &View{alloc: alloc, buf: buf, size: int(object.Size), id: object.ID}
	if size != object.Size {
		v.Release()
		return nil, fmt.Errorf("object %d has %d bytes, expected %d", object.ID, size, object.Size)
	}
	live[v] = struct{}{}
	return v, nil
}

// MapViewID maps an object known only by id (asks the host for its size first).
func MapViewID(id ObjectID) (*View, error) {
	object, err := Object(id)
	if err != nil {
		return nil, err
	}
	return MapView(object)
}

// Release unmaps the view (its slices then read zeros). Calling it twice is harmless.
func (v *View) Release() {
	if v.buf == nil {
		return
	}
	hostReleaseView(unsafe.Pointer(&v.buf[0]), uint32(len(v.buf)))
	delete(live, v)
	v.buf = nil
	v.alloc = nil
	v.size = 0
}

// releaseAllViews releases every view still mapped (at the end of each export call).
func releaseAllViews() {
	for v := range live {
		v.Release()
	}
}

// ID is the id of the viewed object.
func (v *View) ID() ObjectID { return v.id }

// Len is the object's size in bytes.
func (v *View) Len() int { return v.size }

// Bytes returns the object's bytes, in place (no copy). Writes go to private pages.
func (v *View) Bytes() []byte {
	if v.size == 0 {
		return []byte{}
	}
	return v.buf[:v.size:v.size]
}

func viewSlice[T any](v *View) ([]T, error) {
	var zero T
	size := int(unsafe.Sizeof(zero))
	if v.size%size != 0 {
		return nil, fmt.Errorf("object %d has %d bytes, not a multiple of %d", v.id, v.size, size)
	}
	if v.size == 0 {
		return []T{}, nil
	}
	// The buffer is 64 KiB-aligned and wasm is little-endian: the object's elements are
	// read in place.
	return unsafe.Slice((*T)(unsafe.Pointer(&v.buf[0])), v.size/size), nil
}

// Float64s returns the object as little-endian float64s, in place.
func (v *View) Float64s() ([]float64, error) { return viewSlice[float64](v) }

// Float32s returns the object as little-endian float32s, in place.
func (v *View) Float32s() ([]float32, error) { return viewSlice[float32](v) }

// Uint64s returns the object as little-endian uint64s, in place.
func (v *View) Uint64s() ([]uint64, error) { return viewSlice[uint64](v) }

// Int64s returns the object as little-endian int64s, in place.
func (v *View) Int64s() ([]int64, error) { return viewSlice[int64](v) }

// Uint32s returns the object as little-endian uint32s, in place.
func (v *View) Uint32s() ([]uint32, error) { return viewSlice[uint32](v) }

// Int32s returns the object as little-endian int32s, in place.
func (v *View) Int32s() ([]int32, error) { return viewSlice[int32](v) }

// Float64s reinterprets little-endian bytes as float64s in place (no copy); data's length
// must be a multiple of 8 and data must be 8-aligned (as Get's and View's results are).
func Float64s(data []byte) ([]float64, error) {
	if len(data)%8 != 0 {
		return nil, fmt.Errorf("%d bytes is not a whole number of float64s", len(data))
	}
	if len(data) == 0 {
		return []float64{}, nil
	}
	if uintptr(unsafe.Pointer(&data[0]))%8 != 0 {
		out := make([]float64, len(data)/8)
		copy(unsafe.Slice((*byte)(unsafe.Pointer(&out[0])), len(data)), data)
		return out, nil
	}
	return unsafe.Slice((*float64)(unsafe.Pointer(&data[0])), len(data)/8), nil
}
