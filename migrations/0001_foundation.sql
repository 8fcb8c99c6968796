-- Settings the gateway generates once and every replica must share (e.g. the sandbox JWT secret).
CREATE TABLE gateway_settings (
    name       text PRIMARY KEY,
    value      text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
