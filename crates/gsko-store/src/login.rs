//! What resident login keeps: AuthnRequests awaiting their answer, the artifacts and assertions
//! already consumed (one-time use), residents' sessions and the one-time codes a portal backend
//! exchanges for a session token. Both backends, one statement text, as in
//! [`crate::delivery_sql`].
//!
//! Why sessions live in the database and not only in their signed token: a token cannot be
//! taken back, a row can (logout, an admin's revocation), and every instance of the query
//! service sees the same rows.

use crate::payment_sql::{
    self as p, pg_from_instant, pg_instant, sqlite_from_instant, sqlite_instant, FromInstant,
};
use crate::StoreError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// An AuthnRequest sent to the identity provider, found again by the RelayState it carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingLogin {
    pub relay_state: String,
    /// The AuthnRequest's ID: the answer's `InResponseTo` must name it.
    pub request_id: String,
    /// Where the browser goes once logged in.
    pub return_to: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A resident's session. Holds personal data on purpose (the store is where it lives); its
/// `Debug` leaves it out.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub sid: String,
    pub pesel: String,
    pub given_name: String,
    pub family_name: String,
    /// The level of assurance the identity provider vouched for (an eIDAS LoA URI).
    pub loa: String,
    /// The identity provider's NameID and SessionIndex, needed to log out there too.
    pub name_id: String,
    pub session_index: Option<String>,
    pub created_at: DateTime<Utc>,
    /// When the session ends unless renewed.
    pub expires_at: DateTime<Utc>,
    /// The latest a renewal may reach (the login's absolute lifetime).
    pub max_until: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRecord")
            .field("sid", &self.sid)
            .field("expires_at", &self.expires_at)
            .field("revoked_at", &self.revoked_at)
            .finish_non_exhaustive()
    }
}

impl SessionRecord {
    /// Whether the session may be used at `now`.
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }
}

#[async_trait]
pub trait LoginStore: Send + Sync {
    async fn login_begin(&self, pending: &PendingLogin) -> Result<(), StoreError>;
    /// Takes (removes) the pending login of `relay_state`: a second answer finds nothing.
    async fn login_take(&self, relay_state: &str) -> Result<Option<PendingLogin>, StoreError>;
    /// Marks `key` (an artifact, an assertion id) consumed until `expires_at`; `false` when it
    /// already was (a replay).
    async fn login_mark_used(
        &self,
        key: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    async fn session_create(&self, session: &SessionRecord) -> Result<(), StoreError>;
    async fn session(&self, sid: &str) -> Result<Option<SessionRecord>, StoreError>;
    /// Replaces a live session by `next` (renewal with a fresh id); `false` when `old_sid` is
    /// no longer live, and then nothing is written.
    async fn session_rotate(
        &self,
        old_sid: &str,
        next: &SessionRecord,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Revokes one session; `false` when it was not live.
    async fn session_revoke(&self, sid: &str, at: DateTime<Utc>) -> Result<bool, StoreError>;
    /// Revokes every live session of a resident (an admin's action); how many.
    async fn session_revoke_resident(
        &self,
        pesel: &str,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError>;
    async fn login_code_create(
        &self,
        code_sha256: &str,
        sid: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Takes a code once; the session id it stands for when it had not expired.
    async fn login_code_take(
        &self,
        code_sha256: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError>;
    /// Deletes what expired before `now` (pending logins, used markers, codes, sessions past
    /// their absolute limit); how many rows.
    async fn login_prune(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;
}

const PENDING_INSERT: &str =
    "INSERT INTO login_pending (relay_state, request_id, return_to, created_at, expires_at)
     VALUES ($1, $2, $3, $4, $5)";
const PENDING_TAKE: &str = "DELETE FROM login_pending WHERE relay_state = $1
     RETURNING relay_state, request_id, return_to, created_at, expires_at";
const USED_INSERT: &str = "INSERT INTO login_used (key, expires_at) VALUES ($1, $2)
     ON CONFLICT (key) DO NOTHING";
const SESSION_COLUMNS: &str = "sid, pesel, given_name, family_name, loa, name_id, session_index,
     created_at, expires_at, max_until, revoked_at";
const SESSION_INSERT: &str =
    "INSERT INTO sessions (sid, pesel, given_name, family_name, loa, name_id, session_index,
     created_at, expires_at, max_until, revoked_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
const SESSION_REVOKE: &str =
    "UPDATE sessions SET revoked_at = $2 WHERE sid = $1 AND revoked_at IS NULL AND expires_at > $2";
const SESSION_REVOKE_RESIDENT: &str =
    "UPDATE sessions SET revoked_at = $2 WHERE pesel = $1 AND revoked_at IS NULL AND expires_at > $2";
const CODE_INSERT: &str =
    "INSERT INTO login_codes (code_sha256, sid, expires_at) VALUES ($1, $2, $3)";
const CODE_TAKE: &str = "DELETE FROM login_codes WHERE code_sha256 = $1 RETURNING sid, expires_at";
const PRUNE: [&str; 4] = [
    "DELETE FROM login_pending WHERE expires_at < $1",
    "DELETE FROM login_used WHERE expires_at < $1",
    "DELETE FROM login_codes WHERE expires_at < $1",
    "DELETE FROM sessions WHERE max_until < $1",
];

type PendingCols<I> = (String, String, String, I, I);
type SessionCols<I> = (
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    I,
    I,
    I,
    Option<I>,
);

fn pending<I>(r: PendingCols<I>, from: FromInstant<I>) -> Result<PendingLogin, StoreError> {
    let t = "login_pending";
    Ok(PendingLogin {
        created_at: from(t, &r.0, r.3)?,
        expires_at: from(t, &r.0, r.4)?,
        relay_state: r.0,
        request_id: r.1,
        return_to: r.2,
    })
}

fn session<I>(r: SessionCols<I>, from: FromInstant<I>) -> Result<SessionRecord, StoreError> {
    let t = "sessions";
    Ok(SessionRecord {
        created_at: from(t, &r.0, r.7)?,
        expires_at: from(t, &r.0, r.8)?,
        max_until: from(t, &r.0, r.9)?,
        revoked_at: r.10.map(|v| from(t, &r.0, v)).transpose()?,
        sid: r.0,
        pesel: r.1,
        given_name: r.2,
        family_name: r.3,
        loa: r.4,
        name_id: r.5,
        session_index: r.6,
    })
}

fn session_texts(s: &SessionRecord) -> impl Iterator<Item = &str> {
    [
        s.sid.as_str(),
        &s.pesel,
        &s.given_name,
        &s.family_name,
        &s.loa,
        &s.name_id,
    ]
    .into_iter()
    .chain(s.session_index.as_deref())
}

macro_rules! login_store {
    (
        mod: $modname:ident,
        store: $store:ty,
        db: $db:ty,
        begin_write: $begin:expr,
        instant: $inst:ty,
        to_instant: $to:expr,
        from_instant: $from:expr $(,)?
    ) => {
        mod $modname {
            use super::*;
            use $crate::error::map_sqlx;

            type Conn = <$db as sqlx::Database>::Connection;
            const FROM: FromInstant<$inst> = $from;

            async fn insert_session(conn: &mut Conn, s: &SessionRecord) -> Result<(), StoreError> {
                sqlx::query(SESSION_INSERT)
                    .bind(&s.sid)
                    .bind(&s.pesel)
                    .bind(&s.given_name)
                    .bind(&s.family_name)
                    .bind(&s.loa)
                    .bind(&s.name_id)
                    .bind(s.session_index.as_deref())
                    .bind($to(s.created_at))
                    .bind($to(s.expires_at))
                    .bind($to(s.max_until))
                    .bind(s.revoked_at.map($to))
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| map_sqlx("create session", e))?;
                Ok(())
            }

            #[async_trait]
            impl LoginStore for $store {
                async fn login_begin(&self, l: &PendingLogin) -> Result<(), StoreError> {
                    let op = "begin login";
                    p::refuse_nul(op, [l.relay_state.as_str(), &l.request_id, &l.return_to])?;
                    sqlx::query(PENDING_INSERT)
                        .bind(&l.relay_state)
                        .bind(&l.request_id)
                        .bind(&l.return_to)
                        .bind($to(l.created_at))
                        .bind($to(l.expires_at))
                        .execute(self.pool())
                        .await
                        .map_err(|e| map_sqlx(op, e))?;
                    Ok(())
                }

                async fn login_take(
                    &self,
                    relay_state: &str,
                ) -> Result<Option<PendingLogin>, StoreError> {
                    if p::unstorable(relay_state) {
                        return Ok(None);
                    }
                    let row: Option<PendingCols<$inst>> = sqlx::query_as(PENDING_TAKE)
                        .bind(relay_state)
                        .fetch_optional(self.pool())
                        .await
                        .map_err(|e| map_sqlx("take login", e))?;
                    row.map(|r| pending(r, FROM)).transpose()
                }

                async fn login_mark_used(
                    &self,
                    key: &str,
                    expires_at: DateTime<Utc>,
                ) -> Result<bool, StoreError> {
                    let op = "mark used";
                    p::refuse_nul(op, [key])?;
                    let done = sqlx::query(USED_INSERT)
                        .bind(key)
                        .bind($to(expires_at))
                        .execute(self.pool())
                        .await
                        .map_err(|e| map_sqlx(op, e))?;
                    Ok(done.rows_affected() == 1)
                }

                async fn session_create(&self, s: &SessionRecord) -> Result<(), StoreError> {
                    p::refuse_nul("create session", session_texts(s))?;
                    let mut conn = self
                        .pool()
                        .acquire()
                        .await
                        .map_err(|e| map_sqlx("create session", e))?;
                    insert_session(&mut conn, s).await
                }

                async fn session(&self, sid: &str) -> Result<Option<SessionRecord>, StoreError> {
                    if p::unstorable(sid) {
                        return Ok(None);
                    }
                    let row: Option<SessionCols<$inst>> = sqlx::query_as(&format!(
                        "SELECT {SESSION_COLUMNS} FROM sessions WHERE sid = $1"
                    ))
                    .bind(sid)
                    .fetch_optional(self.pool())
                    .await
                    .map_err(|e| map_sqlx("read session", e))?;
                    row.map(|r| session(r, FROM)).transpose()
                }

                async fn session_rotate(
                    &self,
                    old_sid: &str,
                    next: &SessionRecord,
                    at: DateTime<Utc>,
                ) -> Result<bool, StoreError> {
                    let op = "renew session";
                    p::refuse_nul(op, session_texts(next).chain([old_sid]))?;
                    let mut tx = self
                        .pool()
                        .begin_with($begin)
                        .await
                        .map_err(|e| map_sqlx(op, e))?;
                    let revoked = sqlx::query(SESSION_REVOKE)
                        .bind(old_sid)
                        .bind($to(at))
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| map_sqlx(op, e))?;
                    if revoked.rows_affected() != 1 {
                        tx.rollback().await.map_err(|e| map_sqlx(op, e))?;
                        return Ok(false);
                    }
                    insert_session(&mut tx, next).await?;
                    tx.commit().await.map_err(|e| map_sqlx(op, e))?;
                    Ok(true)
                }

                async fn session_revoke(
                    &self,
                    sid: &str,
                    at: DateTime<Utc>,
                ) -> Result<bool, StoreError> {
                    if p::unstorable(sid) {
                        return Ok(false);
                    }
                    let done = sqlx::query(SESSION_REVOKE)
                        .bind(sid)
                        .bind($to(at))
                        .execute(self.pool())
                        .await
                        .map_err(|e| map_sqlx("revoke session", e))?;
                    Ok(done.rows_affected() == 1)
                }

                async fn session_revoke_resident(
                    &self,
                    pesel: &str,
                    at: DateTime<Utc>,
                ) -> Result<u64, StoreError> {
                    if p::unstorable(pesel) {
                        return Ok(0);
                    }
                    let done = sqlx::query(SESSION_REVOKE_RESIDENT)
                        .bind(pesel)
                        .bind($to(at))
                        .execute(self.pool())
                        .await
                        .map_err(|e| map_sqlx("revoke sessions", e))?;
                    Ok(done.rows_affected())
                }

                async fn login_code_create(
                    &self,
                    code_sha256: &str,
                    sid: &str,
                    expires_at: DateTime<Utc>,
                ) -> Result<(), StoreError> {
                    let op = "create login code";
                    p::refuse_nul(op, [code_sha256, sid])?;
                    sqlx::query(CODE_INSERT)
                        .bind(code_sha256)
                        .bind(sid)
                        .bind($to(expires_at))
                        .execute(self.pool())
                        .await
                        .map_err(|e| map_sqlx(op, e))?;
                    Ok(())
                }

                async fn login_code_take(
                    &self,
                    code_sha256: &str,
                    now: DateTime<Utc>,
                ) -> Result<Option<String>, StoreError> {
                    if p::unstorable(code_sha256) {
                        return Ok(None);
                    }
                    let row: Option<(String, $inst)> = sqlx::query_as(CODE_TAKE)
                        .bind(code_sha256)
                        .fetch_optional(self.pool())
                        .await
                        .map_err(|e| map_sqlx("take login code", e))?;
                    match row {
                        Some((sid, exp)) if FROM("login_codes", code_sha256, exp)? > now => {
                            Ok(Some(sid))
                        }
                        _ => Ok(None),
                    }
                }

                async fn login_prune(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
                    let mut n = 0;
                    for sql in PRUNE {
                        n += sqlx::query(sql)
                            .bind($to(now))
                            .execute(self.pool())
                            .await
                            .map_err(|e| map_sqlx("prune logins", e))?
                            .rows_affected();
                    }
                    Ok(n)
                }
            }
        }
    };
}

login_store!(
    mod: pg_impl,
    store: crate::PgStore,
    db: sqlx::Postgres,
    begin_write: "BEGIN",
    instant: DateTime<Utc>,
    to_instant: pg_instant,
    from_instant: pg_from_instant,
);

login_store!(
    mod: sqlite_impl,
    store: crate::SqliteStore,
    db: sqlx::Sqlite,
    begin_write: "BEGIN IMMEDIATE",
    instant: i64,
    to_instant: sqlite_instant,
    from_instant: sqlite_from_instant,
);
