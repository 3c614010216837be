-- Responses, their items and their event logs. Times are unix microseconds.
CREATE TABLE responses (
	id                   TEXT     NOT NULL PRIMARY KEY,
	owner                TEXT     NOT NULL,
	created_at           BIGINT   NOT NULL,
	expires_at           BIGINT   NOT NULL,
	status               TEXT     NOT NULL,
	model                TEXT     NOT NULL DEFAULT '',
	previous_response_id TEXT     NOT NULL DEFAULT '',
	conversation_id      TEXT     NOT NULL DEFAULT '',
	object               BYTEA,
	input_size           BIGINT   NOT NULL DEFAULT 0,
	output_size          BIGINT   NOT NULL DEFAULT 0,
	event_size           BIGINT   NOT NULL DEFAULT 0,
	last_seq             BIGINT   NOT NULL DEFAULT -1,
	cancel_requested     SMALLINT NOT NULL DEFAULT 0
);
CREATE INDEX responses_expires_at ON responses (expires_at);
CREATE INDEX responses_conversation ON responses (owner, conversation_id, created_at);

-- kind: 0 input, 1 output; pos: the item's index in its list.
CREATE TABLE items (
	response_id TEXT     NOT NULL REFERENCES responses (id) ON DELETE CASCADE,
	kind        SMALLINT NOT NULL,
	pos         INTEGER  NOT NULL,
	item_id     TEXT     NOT NULL,
	data        BYTEA    NOT NULL,
	PRIMARY KEY (response_id, kind, pos)
);
CREATE INDEX items_item_id ON items (item_id);

CREATE TABLE events (
	response_id TEXT   NOT NULL REFERENCES responses (id) ON DELETE CASCADE,
	seq         BIGINT NOT NULL,
	data        BYTEA  NOT NULL,
	PRIMARY KEY (response_id, seq)
);

-- Every change to a response (an event append moves last_seq) is announced
-- on agentrt_store with the response id, so waits on every replica wake.
CREATE FUNCTION agentrt_store_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'DELETE' THEN
		PERFORM pg_notify('agentrt_store', OLD.id);
	ELSE
		PERFORM pg_notify('agentrt_store', NEW.id);
	END IF;
	RETURN NULL;
END
$$;
CREATE TRIGGER responses_notify AFTER UPDATE OR DELETE ON responses
	FOR EACH ROW EXECUTE FUNCTION agentrt_store_notify();
