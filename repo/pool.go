package repo

import (
	"context"
	"fmt"
	"runtime"
	"sort"
	"sync"
)

// newFileCreator is a storage.Storage that can create a file only if it
// does not exist yet (storage.DirStorage).
type newFileCreator interface {
	CreateNew(ctx context.Context, name string, data []byte) (bool, error)
}

// preWrite writes an in-memory package to the pool if its pool file does
// not exist yet. Only called while holding the lock.
func (r *Repo) preWrite(ctx context.Context, in *incoming, st *stager) error {
	c, ok := r.storage.(newFileCreator)
	if !ok || in.data == nil {
		return nil
	}
	if err := st.journal.add(in.filekey); err != nil {
		return err
	}
	created, err := c.CreateNew(ctx, in.filekey, in.data)
	if err != nil {
		return fmt.Errorf("%s: %w", in.src, err)
	}
	if created {
		st.budget.Add(int64(len(in.data)))
		in.prewritten, in.data = true, nil
	}
	return nil
}

// poolWriters is how many pool files are written at a time.
const poolWriters = 4

// writePool moves into the pool, several at a time, the packages that
// preWrite did not write (their pool path held a stale file). Files go
// through the staging directory and are renamed into place. It returns
// the names written (for cleanup).
func (r *Repo) writePool(ctx context.Context, list []*incoming, st *stager) ([]string, error) {
	var (
		mu       sync.Mutex
		written  []string
		firstErr error
		wg       sync.WaitGroup
		next     = make(chan *incoming)
	)
	names := make([]string, len(list))
	for i, in := range list {
		names[i] = in.filekey
	}
	if err := st.journal.add(names...); err != nil {
		return nil, err
	}
	for range min(poolWriters, len(list)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for in := range next {
				err := in.spill(st)
				if err == nil {
					err = r.storage.PutFile(ctx, in.filekey, in.staged)
				}
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = fmt.Errorf("%s: %w", in.src, err)
				} else if err == nil {
					written = append(written, in.filekey)
				}
				mu.Unlock()
			}
		}()
	}
	for _, in := range list {
		next <- in
	}
	close(next)
	wg.Wait()
	return written, firstErr
}

// stageAll reads every file on all cores. All errors are reported
// together.
func (r *Repo) stageAll(ctx context.Context, files []string, st *stager, prep func(*incoming) error) ([]*incoming, error) {
	out := make([]*incoming, len(files))
	type fileErr struct {
		i   int
		err error
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		done int
		errs []fileErr // usually none: not one slot per file
		next = make(chan int)
	)
	for range min(runtime.GOMAXPROCS(0), len(files)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				in := &incoming{}
				err := stageDeb(ctx, files[i], st, &in.debFile)
				if err == nil {
					out[i] = in // before prep: undo needs it if prep wrote
					err = prep(in)
				}
				if err != nil || r.opts.Progress != nil {
					mu.Lock()
					if err != nil {
						errs = append(errs, fileErr{i, err})
					}
					if r.opts.Progress != nil {
						done++
						r.opts.Progress(done, len(files))
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := range files {
		next <- i
	}
	close(next)
	wg.Wait()
	// In the order of files, as given.
	sort.Slice(errs, func(a, b int) bool { return errs[a].i < errs[b].i })
	var bad []error
	for _, e := range errs {
		bad = append(bad, e.err)
	}
	return out, joinErrors(bad)
}
