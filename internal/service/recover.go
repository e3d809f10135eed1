package service

import (
	"fmt"
	"runtime/debug"
	"sync"
)

// PanicError is a panic recovered while serving a request. The transport
// answers it as an internal error and logs Stack; neither the value nor the
// stack ever reaches the client.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

// Recovered turns the value of recover() into a *PanicError (nil for no
// panic). It is meant for a deferred call: the stack it takes is the one of
// the panicking goroutine.
func Recovered(p any) error {
	if p == nil {
		return nil
	}
	return &PanicError{Value: p, Stack: debug.Stack()}
}

// spawn runs step in a goroutine of wg and stores its error in *errp. No
// recover reaches across goroutines, so a panic in a request's concurrent
// step would end the whole process (a Lambda instance, or `waymark dev`
// with every request in flight): here it becomes the step's error instead.
func spawn(wg *sync.WaitGroup, errp *error, step func() error) {
	wg.Go(func() {
		defer func() {
			if err := Recovered(recover()); err != nil {
				*errp = err
			}
		}()
		*errp = step()
	})
}
