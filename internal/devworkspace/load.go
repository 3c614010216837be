package devworkspace

// Loading the sample data, and waiting for it. New loads it before it
// returns; Start loads it in the background after it listens, so that
// `serve --dev` is up as soon as its routes are, and every route that
// reads the data waits for it (afterData) rather than answer from a
// half-loaded catalog.

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// dataWaitLimit bounds how long a request waits for the sample data; the
// load takes tens of milliseconds, so reaching it means something is
// wrong, and the caller gets a 503 rather than a hung request.
const dataWaitLimit = time.Minute

// loadData creates and fills the tables (generated sample data and static
// rows), then the docs table and the vector indexes built from them.
func (ws *Workspace) loadData(ctx context.Context) error {
	if err := ws.loadTables(ctx); err != nil {
		return err
	}
	return ws.loadVectorSearch(ctx)
}

// dataLoaded records the outcome of the load and releases the requests
// waiting for it; it runs once.
func (ws *Workspace) dataLoaded(err error) {
	ws.dataErr = err
	close(ws.data)
}

// waitData returns once the sample data is in place: nil, the load's
// error, or an error when ctx ends or the wait outlasts dataWaitLimit.
func (ws *Workspace) waitData(ctx context.Context) error {
	select {
	case <-ws.data: // the common case, without a timer
		return ws.dataErr
	default:
	}
	if ws.opts.onDataWait != nil {
		ws.opts.onDataWait()
	}
	t := time.NewTimer(dataWaitLimit)
	defer t.Stop()
	select {
	case <-ws.data:
		return ws.dataErr
	case <-ctx.Done():
		return errDataNotReady
	case <-t.C:
		return errDataNotReady
	}
}

var errDataNotReady = errors.New("the dev workspace's sample data is still loading")

// afterData runs h once the sample data is in place: a 503 when the wait
// ends first (the caller gave up, or the bound passed), a 500 naming the
// error when the load failed.
func (ws *Workspace) afterData(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := ws.waitData(r.Context()); errors.Is(err, errDataNotReady) {
			writeError(w, http.StatusServiceUnavailable, codeTemporarilyUnavailable, "%s", err.Error())
			return
		} else if err != nil {
			writeError(w, http.StatusInternalServerError, codeInternal, "%s", err.Error())
			return
		}
		h(w, r)
	}
}
