-- Failed admin logins and wrong key secrets, counted for every replica at once: a guesser
-- spreading attempts over N replicas gets no more than one replica's budget.
CREATE TABLE auth_failures (
    kind        text        NOT NULL,
    subject     text        NOT NULL,
    failures    integer     NOT NULL,
    -- The window runs from the first failure; after it the count starts again.
    window_ends timestamptz NOT NULL,
    PRIMARY KEY (kind, subject)
);
