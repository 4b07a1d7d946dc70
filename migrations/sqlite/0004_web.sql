-- Browser sessions of the web interface (DESIGN §7): a signed-in access key gets a session
-- cookie; the cookie's hash is stored, with the form token (CSRF) of the session.
-- A revoked key ends its sessions (the session lookup joins the live key).

create table web_sessions (
    id           integer primary key,
    session_hash text not null constraint web_sessions_hash_key unique,
    token_id     integer not null constraint web_sessions_token_fkey references api_tokens (id),
    csrf         text not null,
    created_at   text not null,
    expires_at   text not null
);

create index web_sessions_expires_idx on web_sessions (expires_at);
