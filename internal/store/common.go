package store

import (
	"errors"
	"fmt"
	"slices"
)

// Limits on list arguments.
const (
	defaultListLimit = 20
	maxListLimit     = 100
	maxChain         = 10000 // previous_response_id links History follows at most
)

func checkOwner(owner string) error {
	if owner == "" {
		return ErrAnonymous
	}
	return nil
}

// checkNew validates a response given to Create and fills its defaults.
func checkNew(r *Response) error {
	if err := checkOwner(r.Owner); err != nil {
		return err
	}
	if r.ID == "" {
		return errors.New("store: response has no id")
	}
	if r.Status == "" {
		r.Status = StatusCompleted
	}
	if !r.Status.valid() {
		return fmt.Errorf("store: unknown status %q", r.Status)
	}
	if err := checkItems("input", r.Input); err != nil {
		return err
	}
	return checkItems("output", r.Output)
}

func checkItems(kind string, items []Item) error {
	seen := make(map[string]struct{}, len(items))
	for i, it := range items {
		if it.ID == "" {
			return fmt.Errorf("store: %s item %d has no id", kind, i)
		}
		if _, dup := seen[it.ID]; dup {
			return fmt.Errorf("store: %s item id %q repeats", kind, it.ID)
		}
		seen[it.ID] = struct{}{}
	}
	return nil
}

func itemsSize(items []Item) int64 {
	var n int64
	for _, it := range items {
		n += int64(len(it.ID) + len(it.Data))
	}
	return n
}

func checkSize(size, limit int64) error {
	if limit > 0 && size > limit {
		return &TooLargeError{Size: size, Limit: limit}
	}
	return nil
}

func normList(o ListOptions) (ListOptions, error) {
	switch {
	case o.Limit <= 0:
		o.Limit = defaultListLimit
	case o.Limit > maxListLimit:
		o.Limit = maxListLimit
	}
	switch o.Order {
	case "":
		o.Order = Desc
	case Asc, Desc:
	default:
		return o, fmt.Errorf("store: unknown order %q", o.Order)
	}
	return o, nil
}

func page(items []Item, limit int) *ItemPage {
	p := &ItemPage{Items: items}
	if len(items) > limit {
		p.Items, p.HasMore = items[:limit], true
	}
	if len(p.Items) > 0 {
		p.FirstID, p.LastID = p.Items[0].ID, p.Items[len(p.Items)-1].ID
	}
	return p
}

func missingItem(id string) error { return fmt.Errorf("%w: item %q", ErrNotFound, id) }

func cloneItems(items []Item) []Item {
	if items == nil {
		return nil
	}
	out := make([]Item, len(items))
	for i, it := range items {
		out[i] = Item{ID: it.ID, Data: slices.Clone(it.Data)}
	}
	return out
}

func errBadStatus(s Status) error { return fmt.Errorf("store: unknown status %q", s) }
