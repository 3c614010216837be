-- Responses, their items and their event logs. Times are unix microseconds.
CREATE TABLE responses (
	id                   TEXT    NOT NULL PRIMARY KEY,
	owner                TEXT    NOT NULL,
	created_at           INTEGER NOT NULL,
	expires_at           INTEGER NOT NULL,
	status               TEXT    NOT NULL,
	model                TEXT    NOT NULL DEFAULT '',
	previous_response_id TEXT    NOT NULL DEFAULT '',
	conversation_id      TEXT    NOT NULL DEFAULT '',
	object               BLOB,
	input_size           INTEGER NOT NULL DEFAULT 0,
	output_size          INTEGER NOT NULL DEFAULT 0,
	event_size           INTEGER NOT NULL DEFAULT 0,
	last_seq             INTEGER NOT NULL DEFAULT -1,
	cancel_requested     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX responses_expires_at ON responses (expires_at);
CREATE INDEX responses_conversation ON responses (owner, conversation_id, created_at);

-- kind: 0 input, 1 output; pos: the item's index in its list.
CREATE TABLE items (
	response_id TEXT    NOT NULL REFERENCES responses (id) ON DELETE CASCADE,
	kind        INTEGER NOT NULL,
	pos         INTEGER NOT NULL,
	item_id     TEXT    NOT NULL,
	data        BLOB    NOT NULL,
	PRIMARY KEY (response_id, kind, pos)
);
CREATE INDEX items_item_id ON items (item_id);

CREATE TABLE events (
	response_id TEXT    NOT NULL REFERENCES responses (id) ON DELETE CASCADE,
	seq         INTEGER NOT NULL,
	data        BLOB    NOT NULL,
	PRIMARY KEY (response_id, seq)
);
