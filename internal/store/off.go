package store

import (
	"context"
	"encoding/json"
	"time"
)

// Off returns the store of spec "off": every method returns ErrOff (Close
// returns nil). The host tells it apart with IsOff, to keep stateless
// requests working and answer state fields with 400.
func Off() Store { return offStore{} }

// IsOff reports whether s is the "off" store.
func IsOff(s Store) bool {
	_, ok := s.(offStore)
	return ok
}

type offStore struct{}

func (offStore) Create(context.Context, *Response) error                 { return ErrOff }
func (offStore) Get(context.Context, string, string) (*Response, error)  { return nil, ErrOff }
func (offStore) Update(context.Context, string, string, Update) error    { return ErrOff }
func (offStore) Delete(context.Context, string, string) error            { return ErrOff }
func (offStore) History(context.Context, string, string) ([]Item, error) { return nil, ErrOff }
func (offStore) Items(context.Context, string, []string) ([]Item, error) { return nil, ErrOff }
func (offStore) InputItems(context.Context, string, string, ListOptions) (*ItemPage, error) {
	return nil, ErrOff
}
func (offStore) LastInConversation(context.Context, string, string) (*Response, error) {
	return nil, ErrOff
}
func (offStore) AppendEvent(context.Context, string, string, int64, json.RawMessage) error {
	return ErrOff
}
func (offStore) Events(context.Context, string, string, int64, int) ([]Event, error) {
	return nil, ErrOff
}
func (offStore) WaitEvents(context.Context, string, string, int64) (Progress, error) {
	return Progress{}, ErrOff
}
func (offStore) RequestCancel(context.Context, string, string) (Status, error) { return "", ErrOff }
func (offStore) WaitCancel(context.Context, string, string) error              { return ErrOff }
func (offStore) RenewLease(context.Context, string, string) (time.Time, error) {
	return time.Time{}, ErrOff
}
func (offStore) EndLapsed(context.Context, string, string, LapseFunc) (bool, error) {
	return false, ErrOff
}
func (offStore) ExpireLeases(context.Context, LapseFunc) (int64, error) { return 0, ErrOff }
func (offStore) PurgeExpired(context.Context, time.Time) (int64, error) { return 0, ErrOff }
func (offStore) Close() error                                           { return nil }
