//! What every SQL engine does the same way, written once: binding [`Arg`]s, running statements
//! from [`crate::sql`], and the [`Store`] and [`WriteTx`] implementations on top. An engine
//! module supplies its pools, `open`, `close` and migrations, then invokes [`sql_engine!`].
//!
//! [`Arg`]: crate::sql::Arg
//! [`Store`]: crate::Store
//! [`WriteTx`]: crate::WriteTx

use crate::StoreError;

/// Maps a driver error to the store's error kinds. Connection trouble and PostgreSQL's
/// "connection exception" / "operator intervention" classes become `Unavailable` (HTTP 503).
pub(crate) fn db_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(d) => {
            let msg = d.message().to_string();
            let code = d.code().map(|c| c.to_string()).unwrap_or_default();
            if d.is_unique_violation() || d.is_foreign_key_violation() || d.is_check_violation() {
                StoreError::Constraint(msg)
            } else if code.starts_with("08")
                || code.starts_with("57")
                || code.starts_with("53")
                || msg.contains("database is locked")
                || msg.contains("busy")
            {
                StoreError::Unavailable(msg)
            } else {
                StoreError::Other(msg)
            }
        }
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e.to_string()),
        _ => StoreError::Other(e.to_string()),
    }
}

/// The journal head kept in memory by an engine whose process alone writes the database
/// (SQLite, behind the data-directory lock). Writers hold it in turn from `begin` to commit, so
/// seqs are allocated without a round trip; it is rebuilt from the journal when the store opens.
/// Engines shared by several processes (PostgreSQL) lock the `journal_head` row instead.
#[derive(Debug, Clone, Default)]
pub(crate) struct HeadMemo {
    pub seq: i64,
    pub at: i64,
    pub schema_version: i64,
    /// The database's freeze, as `database_state` holds it (see [`crate::read_only`]).
    pub read_only: Option<crate::ReadOnly>,
}

pub(crate) type Memo = std::sync::Arc<tokio::sync::Mutex<HeadMemo>>;

/// What a write transaction was given to write (record rows and unique values) and has not sent
/// yet. A transaction sends it as a few multi-row statements before its next other statement
/// and at commit, so a batch of a thousand records costs a handful of round trips to the
/// database rather than thousands, and every read in the transaction still sees every write.
/// `(entity, record id, [(key, value)])`.
type HeldValues = (kontor_domain::Entity, String, Vec<(String, String)>);

#[derive(Default)]
pub(crate) struct WriteBuffer {
    puts: Vec<[crate::sql::Arg; 11]>,
    /// Where each record's row is in `puts`: a record written twice is sent once, as last given.
    put_at: std::collections::HashMap<(kontor_domain::Entity, String), usize>,
    /// The unique values each record holds from now on.
    uniques: Vec<HeldValues>,
    uniques_at: std::collections::HashMap<String, usize>,
}

impl WriteBuffer {
    pub(crate) fn put(
        &mut self,
        rec: &kontor_domain::record::Record,
        parent_id: Option<&str>,
        search: &str,
    ) -> crate::StoreResult<()> {
        let row = crate::sql::put_row(rec, parent_id, search)?;
        match self.put_at.entry((rec.entity, rec.id.clone())) {
            std::collections::hash_map::Entry::Occupied(at) => self.puts[*at.get()] = row,
            std::collections::hash_map::Entry::Vacant(at) => {
                at.insert(self.puts.len());
                self.puts.push(row);
            }
        }
        Ok(())
    }

    pub(crate) fn set_uniques(
        &mut self,
        entity: kontor_domain::Entity,
        id: &str,
        values: &[(String, String)],
    ) {
        let entry = (entity, id.to_string(), values.to_vec());
        match self.uniques_at.entry(id.to_string()) {
            std::collections::hash_map::Entry::Occupied(at) => self.uniques[*at.get()] = entry,
            std::collections::hash_map::Entry::Vacant(at) => {
                at.insert(self.uniques.len());
                self.uniques.push(entry);
            }
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.puts.is_empty() && self.uniques.is_empty()
    }

    /// The statements that send everything buffered, in the order to run them; empties the
    /// buffer. Every record's old unique values go before any new one is inserted, so values
    /// that moved between records in this transaction never collide.
    pub(crate) fn drain(&mut self, dialect: crate::sql::Dialect) -> Vec<crate::sql::Stmt> {
        use crate::sql::{insert_uniques, remove_uniques_of, statement_chunks, statement_sizes};
        let mut out = Vec::new();
        self.put_at.clear();
        self.uniques_at.clear();
        let puts = std::mem::take(&mut self.puts);
        let mut rows = puts.into_iter();
        for size in statement_sizes(rows.len()) {
            out.push(dialect.put_rows(rows.by_ref().take(size).collect()));
        }
        let uniques = std::mem::take(&mut self.uniques);
        let ids: Vec<String> = uniques.iter().map(|(_, id, _)| id.clone()).collect();
        for chunk in statement_chunks(&ids) {
            out.push(remove_uniques_of(dialect, chunk));
        }
        let rows: Vec<(kontor_domain::Entity, String, String, String)> = uniques
            .into_iter()
            .flat_map(|(entity, id, values)| {
                values
                    .into_iter()
                    .map(move |(key, value)| (entity, key, value, id.clone()))
            })
            .collect();
        for chunk in statement_chunks(&rows) {
            out.push(insert_uniques(dialect, chunk));
        }
        out
    }
}

/// Implements `RowAccess`, `Store` and `WriteTx` for one sqlx backend.
///
/// `$store` must have fields `writer` and `readers` (pools of `$db`), a `dialect`, a
/// `memo: Option<Memo>`, and an inherent `async fn close_engine(&self)`; `$tx` is generated.
macro_rules! sql_engine {
    ($store:ident, $tx:ident, $db:ty, $row:ty, $args:ty) => {
        impl $crate::sql::RowAccess for $row {
            fn text(&self, col: &str) -> $crate::StoreResult<Option<String>> {
                sqlx::Row::try_get::<Option<String>, _>(self, col)
                    .map_err(|e| $crate::StoreError::Corrupt(e.to_string()))
            }
            fn int(&self, col: &str) -> $crate::StoreResult<Option<i64>> {
                sqlx::Row::try_get::<Option<i64>, _>(self, col)
                    .map_err(|e| $crate::StoreError::Corrupt(e.to_string()))
            }
        }

        fn bind_args(list: Vec<$crate::sql::Arg>) -> $crate::StoreResult<$args> {
            use sqlx::Arguments as _;
            use $crate::sql::Arg;
            let mut a = <$args>::default();
            for v in list {
                let r = match v {
                    Arg::Text(s) => a.add(s),
                    Arg::OptText(s) => a.add(s),
                    Arg::Int(i) => a.add(i),
                    Arg::OptInt(i) => a.add(i),
                };
                r.map_err(|e| $crate::StoreError::Other(e.to_string()))?;
            }
            Ok(a)
        }

        async fn fetch_all<'e, E>(ex: E, s: $crate::sql::Stmt) -> $crate::StoreResult<Vec<$row>>
        where
            E: sqlx::Executor<'e, Database = $db>,
        {
            sqlx::query_with(&s.sql, bind_args(s.args)?)
                .fetch_all(ex)
                .await
                .map_err($crate::engine::db_err)
        }

        async fn fetch_optional<'e, E>(
            ex: E,
            s: $crate::sql::Stmt,
        ) -> $crate::StoreResult<Option<$row>>
        where
            E: sqlx::Executor<'e, Database = $db>,
        {
            sqlx::query_with(&s.sql, bind_args(s.args)?)
                .fetch_optional(ex)
                .await
                .map_err($crate::engine::db_err)
        }

        async fn execute<'e, E>(ex: E, s: $crate::sql::Stmt) -> $crate::StoreResult<u64>
        where
            E: sqlx::Executor<'e, Database = $db>,
        {
            sqlx::query_with(&s.sql, bind_args(s.args)?)
                .execute(ex)
                .await
                .map(|r| r.rows_affected())
                .map_err($crate::engine::db_err)
        }

        fn records(rows: Vec<$row>) -> $crate::StoreResult<Vec<kontor_domain::record::Record>> {
            rows.iter().map($crate::sql::record_from_row).collect()
        }

        fn int_of(row: &$row, col: &str) -> $crate::StoreResult<i64> {
            $crate::sql::RowAccess::req_int(row, col)
        }

        /// Runs one data migration step inside the migration's transaction.
        fn data_step<'c>(
            conn: &'c mut <$db as sqlx::Database>::Connection,
            dialect: $crate::sql::Dialect,
            step: $crate::migrate::DataStep,
        ) -> $crate::migrate::StepFuture<'c> {
            Box::pin(async move {
                use $crate::migrate::DataStep;
                use $crate::sql::{stmt, Arg};
                match step {
                    DataStep::CredentialsOutOfRecords => {
                        let users = records(
                            fetch_all(
                                &mut *conn,
                                dialect.all_records(kontor_domain::Entity::Users),
                            )
                            .await?,
                        )?;
                        let rows =
                            fetch_all(&mut *conn, stmt($crate::sql::USER_IMAGES, vec![])).await?;
                        let journal = rows
                            .iter()
                            .map($crate::sql::image_row)
                            .collect::<$crate::StoreResult<Vec<_>>>()?;
                        let plan =
                            $crate::data_migrations::credentials_out_of_records(users, journal);
                        for (rec, search) in &plan.records {
                            execute(&mut *conn, dialect.put(rec, None, search)?).await?;
                        }
                        for row in &plan.journal {
                            execute(&mut *conn, $crate::sql::set_images(row)).await?;
                        }
                        for (user, hash, at) in plan.credentials {
                            execute(
                                &mut *conn,
                                stmt(
                                    $crate::sql::SET_PASSWORD_HASH,
                                    vec![
                                        Arg::Text(user),
                                        Arg::Text(hash),
                                        Arg::Int(kontor_domain::time::to_micros(at)),
                                    ],
                                ),
                            )
                            .await?;
                        }
                        Ok(())
                    }
                    DataStep::DecimalsAsStrings => {
                        use $crate::sql::RowAccess;
                        let custom = records(
                            fetch_all(
                                &mut *conn,
                                dialect.all_records(kontor_domain::Entity::Fields),
                            )
                            .await?,
                        )?
                        .iter()
                        .filter_map(|r| {
                            kontor_domain::schema::CustomFieldDef::from_record_data(&r.data)
                        })
                        .collect();
                        let mut invoice_currency = std::collections::BTreeMap::new();
                        for row in fetch_all(&mut *conn, dialect.invoice_currencies()).await? {
                            if let Some(c) = row.text("currency")? {
                                invoice_currency.insert(row.req_text("id")?, c);
                            }
                        }
                        let rules = $crate::data_migrations::DecimalRules {
                            custom,
                            invoice_currency,
                        };
                        let entities = rules.entities();
                        const PAGE: i64 = 1000;
                        for entity in &entities {
                            let mut after = String::new();
                            loop {
                                let page = records(
                                    fetch_all(
                                        &mut *conn,
                                        dialect.records_page(*entity, &after, PAGE),
                                    )
                                    .await?,
                                )?;
                                let Some(last) = page.last() else { break };
                                after = last.id.clone();
                                let full = page.len() as i64 == PAGE;
                                for mut rec in page {
                                    if rules.rewrite(*entity, &mut rec.data) {
                                        execute(&mut *conn, dialect.set_data(&rec)?).await?;
                                    }
                                }
                                if !full {
                                    break;
                                }
                            }
                        }
                        let mut after_seq = 0;
                        loop {
                            let rows = fetch_all(
                                &mut *conn,
                                $crate::sql::images_page(&entities, after_seq, PAGE),
                            )
                            .await?;
                            let full = rows.len() as i64 == PAGE;
                            for row in &rows {
                                let mut img = $crate::sql::image_row(row)?;
                                after_seq = img.seq;
                                let mut changed = false;
                                for image in [&mut img.before, &mut img.after] {
                                    if let Some(serde_json::Value::Object(m)) = image {
                                        changed |= rules.rewrite(img.entity, m);
                                    }
                                }
                                if changed {
                                    execute(&mut *conn, $crate::sql::set_images(&img)).await?;
                                }
                            }
                            if !full {
                                break;
                            }
                        }
                        Ok(())
                    }
                }
            })
        }

        impl $store {
            /// How the database would run the first statement of a list: its plan as text,
            /// then the statement.
            /// With `force_indexes`, PostgreSQL is told not to scan tables, so a test on a small
            /// table shows whether an index *can* serve the query.
            pub async fn explain_list(
                &self,
                q: &$crate::ListQuery,
                force_indexes: bool,
            ) -> $crate::StoreResult<String> {
                let segment = $crate::list::segments(q)
                    .first()
                    .copied()
                    .unwrap_or($crate::list::Segment::Whole);
                let hint = self.list_hints.choose(q);
                let stmt = self.dialect.list_segment(q, segment, q.limit, hint.as_deref());
                self.explain(stmt, force_indexes).await
            }

            /// The plan the database chooses for a journal read (as [`Self::explain_list`]).
            pub async fn explain_journal(
                &self,
                q: &$crate::JournalQuery,
            ) -> $crate::StoreResult<String> {
                self.explain(self.dialect.journal(q), false).await
            }

            async fn explain(
                &self,
                mut stmt: $crate::sql::Stmt,
                force_indexes: bool,
            ) -> $crate::StoreResult<String> {
                use $crate::sql::Dialect;
                let mut conn = self.readers.acquire().await.map_err($crate::engine::db_err)?;
                let column = match self.dialect {
                    Dialect::Sqlite => {
                        // EXPLAIN compiles without starting a transaction, so it would not
                        // notice a schema changed by another connection: read once first.
                        sqlx::raw_sql("SELECT 1 FROM records LIMIT 1")
                            .execute(&mut *conn)
                            .await
                            .map_err($crate::engine::db_err)?;
                        stmt.sql = format!("EXPLAIN QUERY PLAN {}", stmt.sql);
                        3
                    }
                    Dialect::Postgres => {
                        let set = if force_indexes { "off" } else { "on" };
                        sqlx::raw_sql(&format!("SET enable_seqscan = {set}"))
                            .execute(&mut *conn)
                            .await
                            .map_err($crate::engine::db_err)?;
                        stmt.sql = format!("EXPLAIN {}", stmt.sql);
                        0
                    }
                };
                let sql_text = stmt.sql.clone();
                let rows = sqlx::query_with(&stmt.sql, bind_args(stmt.args)?)
                    .fetch_all(&mut *conn)
                    .await
                    .map_err($crate::engine::db_err);
                if self.dialect == Dialect::Postgres {
                    let _ = sqlx::raw_sql("RESET enable_seqscan").execute(&mut *conn).await;
                }
                let mut plan = Vec::new();
                for r in rows? {
                    plan.push(
                        sqlx::Row::try_get::<String, _>(&r, column)
                            .map_err(|e| $crate::StoreError::Corrupt(e.to_string()))?,
                    );
                }
                Ok(format!("{}\n{}", plan.join("\n"), sql_text))
            }

        }

        #[async_trait::async_trait]
        impl $crate::Store for $store {
            fn engine(&self) -> &'static str {
                match self.dialect {
                    $crate::sql::Dialect::Sqlite => "sqlite",
                    $crate::sql::Dialect::Postgres => "postgres",
                }
            }

            async fn begin(&self) -> $crate::StoreResult<Box<dyn $crate::WriteTx>> {
                // The node's gate, the memo, then the connection: every writer takes them in
                // this order.
                let gate = self.gate.enter().await.map_err($crate::StoreError::ReadOnly)?;
                let memo = match &self.memo {
                    Some(m) => Some(m.clone().lock_owned().await),
                    None => None,
                };
                if let Some(frozen) = memo.as_ref().and_then(|m| m.read_only.clone()) {
                    return Err($crate::StoreError::ReadOnly(frozen));
                }
                let mut tx = self.writer.begin().await.map_err($crate::engine::db_err)?;
                let (head_seq, head_at, schema_version) = match &memo {
                    Some(m) => (m.seq, m.at, m.schema_version),
                    None => {
                        let head = fetch_optional(
                            &mut *tx,
                            $crate::sql::stmt($crate::sql::LOCK_HEAD, vec![]),
                        )
                        .await?
                        .ok_or_else(|| {
                            $crate::StoreError::Corrupt("journal head row is missing".into())
                        })?;
                        if let Some(frozen) = $crate::sql::RowAccess::text(&head, "read_only")? {
                            return Err($crate::StoreError::ReadOnly(
                                $crate::ReadOnly::from_text(&frozen),
                            ));
                        }
                        (
                            int_of(&head, "seq")?,
                            int_of(&head, "at")?,
                            int_of(&head, "schema_version")?,
                        )
                    }
                };
                let now = kontor_domain::time::to_micros(kontor_domain::time::now()).max(head_at);
                Ok(Box::new($tx {
                    tx,
                    dialect: self.dialect,
                    now: kontor_domain::time::from_micros(now),
                    schema_version,
                    memo,
                    _gate: gate,
                    last_seq: head_seq,
                    schema_bumped: false,
                    buffer: $crate::engine::WriteBuffer::default(),
                }))
            }

            async fn set_read_only(
                &self,
                scope: $crate::Scope,
                state: Option<$crate::ReadOnly>,
            ) -> $crate::StoreResult<()> {
                if scope == $crate::Scope::Node {
                    self.gate.set(state).await;
                    return Ok(());
                }
                let text = state.as_ref().map(|s| s.to_text());
                let args = vec![$crate::sql::Arg::OptText(text)];
                match &self.memo {
                    // Holding the memo waits for the writer in flight and keeps the next out
                    // until the state is stored.
                    Some(m) => {
                        let mut head = m.lock().await;
                        execute(
                            &self.writer,
                            $crate::sql::stmt($crate::sql::SET_READ_ONLY_STATE, args),
                        )
                        .await?;
                        head.read_only = state;
                    }
                    // Updating the head row waits for every node's writer holding it.
                    None => {
                        execute(
                            &self.writer,
                            $crate::sql::stmt($crate::sql::SET_READ_ONLY_HEAD, args),
                        )
                        .await?;
                    }
                }
                Ok(())
            }

            async fn read_only(&self) -> $crate::StoreResult<Option<$crate::ReadOnly>> {
                if let Some(node) = self.gate.get() {
                    return Ok(Some(node));
                }
                let sql = match self.memo {
                    Some(_) => $crate::sql::READ_ONLY_STATE,
                    None => $crate::sql::READ_ONLY_HEAD,
                };
                let row = fetch_optional(&self.readers, $crate::sql::stmt(sql, vec![])).await?;
                Ok(match row {
                    Some(r) => $crate::sql::RowAccess::text(&r, "read_only")?
                        .map(|t| $crate::ReadOnly::from_text(&t)),
                    None => None,
                })
            }

            async fn get(
                &self,
                entity: kontor_domain::Entity,
                id: &str,
            ) -> $crate::StoreResult<Option<kontor_domain::record::Record>> {
                fetch_optional(&self.readers, self.dialect.get(entity, id))
                    .await?
                    .as_ref()
                    .map($crate::sql::record_from_row)
                    .transpose()
            }

            async fn get_many(
                &self,
                entity: kontor_domain::Entity,
                ids: &[String],
            ) -> $crate::StoreResult<Vec<kontor_domain::record::Record>> {
                let mut out = Vec::with_capacity(ids.len());
                for chunk in $crate::sql::statement_chunks(ids) {
                    out.extend(records(
                        fetch_all(&self.readers, self.dialect.get_many(entity, chunk)).await?,
                    )?);
                }
                Ok(out)
            }

            async fn list(
                &self,
                q: &$crate::ListQuery,
            ) -> $crate::StoreResult<Vec<kontor_domain::record::Record>> {
                let mut out = Vec::new();
                let hint = self.list_hints.choose(q);
                for segment in &$crate::list::segments(q) {
                    let left = q.limit.saturating_sub(out.len() as u32);
                    if left == 0 {
                        break;
                    }
                    let stmt = self.dialect.list_segment(q, *segment, left, hint.as_deref());
                    let rows = match fetch_all(&self.readers, stmt).await {
                        // The index named may just have been dropped: the planner chooses.
                        Err(_) if hint.is_some() => {
                            let plain = self.dialect.list_segment(q, *segment, left, None);
                            fetch_all(&self.readers, plain).await?
                        }
                        other => other?,
                    };
                    out.extend(records(rows)?);
                }
                Ok(out)
            }

            async fn count(
                &self,
                q: &$crate::ListQuery,
                bound: u64,
            ) -> $crate::StoreResult<$crate::Count> {
                use $crate::sql::{Dialect, RowAccess};
                let count = |stmt| async {
                    let rows = fetch_all(&self.readers, stmt).await?;
                    let n = rows.first().map(|r| r.req_int("n")).transpose()?.unwrap_or(0);
                    Ok::<u64, $crate::StoreError>(u64::try_from(n).unwrap_or(0))
                };
                let hint = self.list_hints.choose(q);
                let n = count(self.dialect.list_count(q, bound, hint.as_deref())).await?;
                if n <= bound {
                    return Ok($crate::Count { n, exact: true });
                }
                match self.dialect {
                    Dialect::Postgres => {
                        // The planner's estimate: the first line of EXPLAIN ends with
                        // `(cost=… rows=N width=…)`.
                        let rows = fetch_all(&self.readers, self.dialect.list_estimate(q)).await?;
                        let plan = rows
                            .first()
                            .map(|r| sqlx::Row::try_get::<String, _>(r, 0))
                            .transpose()
                            .map_err(|e| $crate::StoreError::Other(e.to_string()))?
                            .unwrap_or_default();
                        let estimate = $crate::list::plan_rows(&plan).unwrap_or(n);
                        Ok($crate::Count {
                            n: estimate.max(n),
                            exact: false,
                        })
                    }
                    Dialect::Sqlite => {
                        // SQLite keeps no estimate; it counts an index range quickly.
                        let n = count(self.dialect.list_count(q, u64::MAX - 1, hint.as_deref()))
                            .await?;
                        Ok($crate::Count { n, exact: true })
                    }
                }
            }

            async fn count_at_most(
                &self,
                q: &$crate::ListQuery,
                bound: u64,
            ) -> $crate::StoreResult<u64> {
                use $crate::sql::RowAccess;
                let hint = self.list_hints.choose(q);
                let stmt = self.dialect.list_count(q, bound, hint.as_deref());
                let rows = fetch_all(&self.readers, stmt).await?;
                let n = rows.first().map(|r| r.req_int("n")).transpose()?.unwrap_or(0);
                Ok(u64::try_from(n).unwrap_or(0))
            }

            async fn ensure_list_indexes(
                &self,
                wanted: &[(kontor_domain::Entity, String, kontor_domain::listing::KeyKind)],
            ) -> $crate::StoreResult<(Vec<String>, Vec<String>)> {
                let present: Vec<(String, bool)> =
                    fetch_all(&self.readers, self.dialect.list_indexes_present())
                        .await?
                        .iter()
                        .map(|r| {
                            let name = sqlx::Row::try_get::<String, _>(r, 0)
                                .map_err(|e| $crate::StoreError::Corrupt(e.to_string()))?;
                            let usable = sqlx::Row::try_get::<i64, _>(r, 1)
                                .map_err(|e| $crate::StoreError::Corrupt(e.to_string()))?;
                            Ok((name, usable == 1))
                        })
                        .collect::<$crate::StoreResult<_>>()?;
                let wanted: Vec<(String, String)> = wanted
                    .iter()
                    .map(|(e, f, k)| {
                        (
                            $crate::list::list_index_name(*e, f),
                            self.dialect.list_index_sql(*e, f, *k),
                        )
                    })
                    .collect();
                let mut dropped = Vec::new();
                let mut statements = Vec::new();
                for (name, usable) in &present {
                    if !(*usable && wanted.iter().any(|(w, _)| w == name)) {
                        statements.push(self.dialect.drop_list_index(name));
                        dropped.push(name.clone());
                    }
                }
                let mut built = Vec::new();
                for (name, sql) in wanted {
                    if !present.iter().any(|(p, usable)| *p == name && *usable) {
                        statements.push(sql);
                        built.push(name);
                    }
                }
                if statements.is_empty() {
                    self.reload_list_hints().await?;
                    return Ok((built, dropped));
                }
                match self.dialect {
                    $crate::sql::Dialect::Sqlite => {
                        // One transaction with the statistics, so that readers load the new
                        // schema and what the planner should know of it together.
                        let script = format!(
                            "BEGIN IMMEDIATE; {}; PRAGMA analysis_limit = 1000; ANALYZE; COMMIT;",
                            statements.join("; ")
                        );
                        if let Err(e) = sqlx::raw_sql(&script).execute(&self.writer).await {
                            let _ = sqlx::raw_sql("ROLLBACK").execute(&self.writer).await;
                            return Err($crate::engine::db_err(e));
                        }
                    }
                    $crate::sql::Dialect::Postgres => {
                        // Each concurrently (writes go on), outside any transaction.
                        for sql in statements {
                            sqlx::raw_sql(&sql)
                                .execute(&self.writer)
                                .await
                                .map_err($crate::engine::db_err)?;
                        }
                        sqlx::raw_sql("ANALYZE records")
                            .execute(&self.writer)
                            .await
                            .map_err($crate::engine::db_err)?;
                    }
                }
                self.reload_list_hints().await?;
                Ok((built, dropped))
            }

            async fn trash(
                &self,
                q: &$crate::TrashQuery,
            ) -> $crate::StoreResult<Vec<kontor_domain::record::Record>> {
                records(fetch_all(&self.readers, self.dialect.trash(q)).await?)
            }

            async fn journal(
                &self,
                q: &$crate::JournalQuery,
            ) -> $crate::StoreResult<Vec<kontor_domain::journal::JournalEntry>> {
                fetch_all(&self.readers, self.dialect.journal(q))
                    .await?
                    .iter()
                    .map($crate::sql::journal_from_row)
                    .collect()
            }

            async fn all_records(
                &self,
                entity: kontor_domain::Entity,
            ) -> $crate::StoreResult<Vec<kontor_domain::record::Record>> {
                records(fetch_all(&self.readers, self.dialect.all_records(entity)).await?)
            }

            async fn external_ids(
                &self,
                entity: kontor_domain::Entity,
                after: &str,
                limit: u32,
            ) -> $crate::StoreResult<Vec<(String, String, bool)>> {
                fetch_all(
                    &self.readers,
                    self.dialect.external_ids(entity, after, limit),
                )
                .await?
                .iter()
                .map(|r| {
                    use $crate::sql::RowAccess;
                    Ok((
                        r.req_text("id")?,
                        r.req_text("external_id")?,
                        r.req_int("deleted")? != 0,
                    ))
                })
                .collect()
            }

            async fn find_unique(
                &self,
                entity: kontor_domain::Entity,
                key: &str,
                value: &str,
            ) -> $crate::StoreResult<Option<kontor_domain::record::Record>> {
                fetch_optional(&self.readers, self.dialect.find_unique(entity, key, value))
                    .await?
                    .as_ref()
                    .map($crate::sql::record_from_row)
                    .transpose()
            }

            async fn journal_head(&self) -> $crate::StoreResult<i64> {
                let sql = match self.memo {
                    Some(_) => $crate::sql::HEAD_FROM_JOURNAL,
                    None => $crate::sql::HEAD_SEQ,
                };
                let row = fetch_optional(&self.readers, $crate::sql::stmt(sql, vec![]))
                    .await?
                    .ok_or_else(|| {
                        $crate::StoreError::Corrupt("journal head row is missing".into())
                    })?;
                int_of(&row, "seq")
            }

            async fn create_session(&self, s: &$crate::Session) -> $crate::StoreResult<()> {
                use $crate::sql::Arg;
                execute(
                    &self.writer,
                    $crate::sql::stmt(
                        $crate::sql::CREATE_SESSION,
                        vec![
                            Arg::Text(s.token_hash.clone()),
                            Arg::Text(s.user_id.clone()),
                            Arg::Int(kontor_domain::time::to_micros(s.created_at)),
                            Arg::Int(kontor_domain::time::to_micros(s.expires_at)),
                        ],
                    ),
                )
                .await
                .map(|_| ())
            }

            async fn session(
                &self,
                token_hash: &str,
                now: kontor_domain::time::Timestamp,
            ) -> $crate::StoreResult<Option<$crate::Session>> {
                use $crate::sql::Arg;
                fetch_optional(
                    &self.readers,
                    $crate::sql::stmt(
                        $crate::sql::GET_SESSION,
                        vec![
                            Arg::Text(token_hash.into()),
                            Arg::Int(kontor_domain::time::to_micros(now)),
                        ],
                    ),
                )
                .await?
                .as_ref()
                .map($crate::sql::session_from_row)
                .transpose()
            }

            async fn revoke_session(&self, token_hash: &str) -> $crate::StoreResult<()> {
                use $crate::sql::Arg;
                let now = kontor_domain::time::to_micros(kontor_domain::time::now());
                execute(
                    &self.writer,
                    $crate::sql::stmt(
                        $crate::sql::REVOKE_SESSION,
                        vec![Arg::Int(now), Arg::Text(token_hash.into())],
                    ),
                )
                .await
                .map(|_| ())
            }

            async fn revoke_user_sessions(&self, user_id: &str) -> $crate::StoreResult<()> {
                use $crate::sql::Arg;
                let now = kontor_domain::time::to_micros(kontor_domain::time::now());
                execute(
                    &self.writer,
                    $crate::sql::stmt(
                        $crate::sql::REVOKE_USER_SESSIONS,
                        vec![Arg::Int(now), Arg::Text(user_id.into())],
                    ),
                )
                .await
                .map(|_| ())
            }

            async fn prune_sessions(
                &self,
                before: kontor_domain::time::Timestamp,
            ) -> $crate::StoreResult<u64> {
                use $crate::sql::Arg;
                execute(
                    &self.writer,
                    $crate::sql::stmt(
                        $crate::sql::PRUNE_SESSIONS,
                        vec![Arg::Int(kontor_domain::time::to_micros(before))],
                    ),
                )
                .await
            }

            async fn reserve_login_slots(
                &self,
                keys: &[(String, u32)],
                now: kontor_domain::time::Timestamp,
                expired_before: kontor_domain::time::Timestamp,
            ) -> $crate::StoreResult<Vec<$crate::LoginSlot>> {
                use $crate::sql::{Arg, RowAccess};
                let mut tx = self.writer.begin().await.map_err($crate::engine::db_err)?;
                let mut slots = Vec::with_capacity(keys.len());
                for (i, (key, limit)) in keys.iter().enumerate() {
                    let row = fetch_optional(
                        &mut *tx,
                        $crate::sql::stmt(
                            $crate::sql::RESERVE_LOGIN_SLOT,
                            vec![
                                Arg::Text(key.clone()),
                                Arg::Int(kontor_domain::time::to_micros(now)),
                                Arg::Int(kontor_domain::time::to_micros(expired_before)),
                                Arg::Int(i64::from(*limit)),
                            ],
                        ),
                    )
                    .await?
                    .ok_or_else(|| {
                        $crate::StoreError::Other("login slot upsert returned no row".into())
                    })?;
                    let slot = $crate::LoginSlot {
                        granted: row.req_int("granted")? != 0,
                        failures: row.req_int("failures")?,
                        window_start: kontor_domain::time::from_micros(
                            row.req_int("window_start")?,
                        ),
                    };
                    slots.push(slot);
                    if !slot.granted {
                        for (earlier, _) in &keys[..i] {
                            execute(
                                &mut *tx,
                                $crate::sql::stmt(
                                    $crate::sql::FINISH_LOGIN_ATTEMPT,
                                    vec![Arg::Text(earlier.clone()), Arg::Int(0), Arg::Int(0)],
                                ),
                            )
                            .await?;
                        }
                        break;
                    }
                }
                tx.commit().await.map_err($crate::engine::db_err)?;
                Ok(slots)
            }

            async fn finish_login_attempts(
                &self,
                slots: &[(String, bool, bool)],
            ) -> $crate::StoreResult<()> {
                use $crate::sql::Arg;
                let mut tx = self.writer.begin().await.map_err($crate::engine::db_err)?;
                for (key, failed, forgive) in slots {
                    execute(
                        &mut *tx,
                        $crate::sql::stmt(
                            $crate::sql::FINISH_LOGIN_ATTEMPT,
                            vec![
                                Arg::Text(key.clone()),
                                Arg::Int(i64::from(*failed)),
                                Arg::Int(i64::from(*forgive)),
                            ],
                        ),
                    )
                    .await?;
                }
                tx.commit().await.map_err($crate::engine::db_err)
            }

            async fn prune_login_limits(
                &self,
                before: kontor_domain::time::Timestamp,
            ) -> $crate::StoreResult<u64> {
                use $crate::sql::Arg;
                execute(
                    &self.writer,
                    $crate::sql::stmt(
                        $crate::sql::PRUNE_LOGIN_LIMITS,
                        vec![Arg::Int(kontor_domain::time::to_micros(before))],
                    ),
                )
                .await
            }

            async fn password_hash(&self, user_id: &str) -> $crate::StoreResult<Option<String>> {
                use $crate::sql::{Arg, RowAccess};
                fetch_optional(
                    &self.readers,
                    $crate::sql::stmt(
                        $crate::sql::GET_PASSWORD_HASH,
                        vec![Arg::Text(user_id.into())],
                    ),
                )
                .await?
                .map(|r| r.req_text("password_hash"))
                .transpose()
            }

            async fn try_lease(
                &self,
                name: &str,
                holder: &str,
                now: kontor_domain::time::Timestamp,
                ttl: std::time::Duration,
            ) -> $crate::StoreResult<bool> {
                use $crate::sql::Arg;
                let now_us = kontor_domain::time::to_micros(now);
                let until = now_us + i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX / 2);
                let n = execute(
                    &self.writer,
                    $crate::sql::stmt(
                        $crate::sql::TRY_LEASE,
                        vec![
                            Arg::Text(name.into()),
                            Arg::Text(holder.into()),
                            Arg::Int(until),
                            Arg::Int(now_us),
                        ],
                    ),
                )
                .await?;
                Ok(n > 0)
            }

            async fn put_job(&self, job: &$crate::JobRow) -> $crate::StoreResult<()> {
                execute(&self.writer, $crate::sql::put_job(job))
                    .await
                    .map(|_| ())
            }

            async fn job(&self, id: &str) -> $crate::StoreResult<Option<$crate::JobRow>> {
                use $crate::sql::Arg;
                fetch_optional(
                    &self.readers,
                    $crate::sql::stmt($crate::sql::GET_JOB, vec![Arg::Text(id.into())]),
                )
                .await?
                .map(|r| $crate::sql::job_from_row(&r))
                .transpose()
            }

            async fn jobs(
                &self,
                kind_prefix: &str,
                before: Option<&str>,
                limit: u32,
            ) -> $crate::StoreResult<Vec<$crate::JobRow>> {
                fetch_all(
                    &self.readers,
                    $crate::sql::list_jobs(kind_prefix, before, limit),
                )
                .await?
                .iter()
                .map($crate::sql::job_from_row)
                .collect()
            }

            async fn unique_holders(
                &self,
                entity: kontor_domain::Entity,
                key: &str,
                values: &[String],
            ) -> $crate::StoreResult<Vec<(String, String)>> {
                use $crate::sql::RowAccess;
                let mut out = Vec::new();
                for chunk in $crate::sql::statement_chunks(values) {
                    for row in fetch_all(
                        &self.readers,
                        $crate::sql::unique_holders(self.dialect, entity, key, chunk),
                    )
                    .await?
                    {
                        out.push((row.req_text("value")?, row.req_text("record_id")?));
                    }
                }
                Ok(out)
            }

            async fn save_progress(&self, p: &$crate::JobProgress) -> $crate::StoreResult<()> {
                let mut tx = self.writer.begin().await.map_err($crate::engine::db_err)?;
                for stmt in $crate::sql::save_progress(p, kontor_domain::time::now()) {
                    execute(&mut *tx, stmt).await?;
                }
                tx.commit().await.map_err($crate::engine::db_err)
            }

            async fn job_checkpoint(&self, job_id: &str) -> $crate::StoreResult<Option<String>> {
                use $crate::sql::{Arg, RowAccess};
                fetch_optional(
                    &self.readers,
                    $crate::sql::stmt(
                        $crate::sql::GET_CHECKPOINT,
                        vec![Arg::Text(job_id.into())],
                    ),
                )
                .await?
                .map(|r| r.req_text("checkpoint"))
                .transpose()
            }

            async fn import_errors(
                &self,
                job_id: &str,
                after: Option<(u64, String)>,
                limit: u32,
            ) -> $crate::StoreResult<Vec<$crate::ImportErrorRow>> {
                fetch_all(
                    &self.readers,
                    $crate::sql::import_errors(job_id, after, limit),
                )
                .await?
                .iter()
                .map($crate::sql::import_error_from_row)
                .collect()
            }

            async fn ping(&self) -> $crate::StoreResult<()> {
                execute(&self.readers, $crate::sql::stmt("SELECT 1", vec![]))
                    .await
                    .map(|_| ())
            }

            async fn close(&self) {
                self.close_engine().await
            }
        }

        pub struct $tx {
            tx: sqlx::Transaction<'static, $db>,
            dialect: $crate::sql::Dialect,
            now: kontor_domain::time::Timestamp,
            schema_version: i64,
            /// Held from begin to commit when the head lives in memory.
            memo: Option<tokio::sync::OwnedMutexGuard<$crate::engine::HeadMemo>>,
            /// Held from begin to the end: a node's freeze waits for it.
            _gate: tokio::sync::OwnedRwLockReadGuard<Option<$crate::ReadOnly>>,
            /// Last seq allocated (memo engines).
            last_seq: i64,
            schema_bumped: bool,
            /// Rows given to `put` and `set_uniques`, not yet sent.
            buffer: $crate::engine::WriteBuffer,
        }

        impl $tx {
            /// Sends what was buffered; runs before every other statement of the transaction.
            async fn flush(&mut self) -> $crate::StoreResult<()> {
                if self.buffer.is_empty() {
                    return Ok(());
                }
                for s in self.buffer.drain(self.dialect) {
                    execute(&mut *self.tx, s).await?;
                }
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl $crate::WriteTx for $tx {
            async fn get(
                &mut self,
                entity: kontor_domain::Entity,
                id: &str,
            ) -> $crate::StoreResult<Option<kontor_domain::record::Record>> {
                self.flush().await?;
                fetch_optional(&mut *self.tx, self.dialect.get(entity, id))
                    .await?
                    .as_ref()
                    .map($crate::sql::record_from_row)
                    .transpose()
            }

            async fn put(
                &mut self,
                rec: &kontor_domain::record::Record,
                parent_id: Option<&str>,
                search: &str,
            ) -> $crate::StoreResult<()> {
                self.buffer.put(rec, parent_id, search)
            }

            async fn remove(
                &mut self,
                entity: kontor_domain::Entity,
                id: &str,
            ) -> $crate::StoreResult<()> {
                self.flush().await?;
                use $crate::sql::Arg;
                execute(
                    &mut *self.tx,
                    $crate::sql::stmt(
                        $crate::sql::REMOVE_RECORD,
                        vec![Arg::Text(entity.as_str().into()), Arg::Text(id.into())],
                    ),
                )
                .await?;
                execute(
                    &mut *self.tx,
                    $crate::sql::stmt($crate::sql::REMOVE_UNIQUES, vec![Arg::Text(id.into())]),
                )
                .await
                .map(|_| ())
            }

            async fn children(
                &mut self,
                parent_id: &str,
            ) -> $crate::StoreResult<Vec<kontor_domain::record::Record>> {
                self.flush().await?;
                records(fetch_all(&mut *self.tx, self.dialect.children(parent_id)).await?)
            }

            async fn deleted_in_batch(
                &mut self,
                batch: kontor_domain::BatchId,
            ) -> $crate::StoreResult<Vec<kontor_domain::record::Record>> {
                self.flush().await?;
                records(fetch_all(&mut *self.tx, self.dialect.deleted_in_batch(batch)).await?)
            }

            async fn live_records(
                &mut self,
                entity: kontor_domain::Entity,
            ) -> $crate::StoreResult<Vec<kontor_domain::record::Record>> {
                self.flush().await?;
                records(fetch_all(&mut *self.tx, self.dialect.live_records(entity)).await?)
            }

            async fn unique_holder(
                &mut self,
                entity: kontor_domain::Entity,
                key: &str,
                value: &str,
            ) -> $crate::StoreResult<Option<String>> {
                self.flush().await?;
                use $crate::sql::{Arg, RowAccess};
                let row = fetch_optional(
                    &mut *self.tx,
                    $crate::sql::stmt(
                        $crate::sql::UNIQUE_HOLDER,
                        vec![
                            Arg::Text(entity.as_str().into()),
                            Arg::Text(key.into()),
                            Arg::Text(value.into()),
                        ],
                    ),
                )
                .await?;
                row.map(|r| r.req_text("record_id")).transpose()
            }

            async fn set_uniques(
                &mut self,
                entity: kontor_domain::Entity,
                id: &str,
                values: &[(String, String)],
            ) -> $crate::StoreResult<()> {
                self.buffer.set_uniques(entity, id, values);
                Ok(())
            }

            async fn get_many(
                &mut self,
                entity: kontor_domain::Entity,
                ids: &[String],
            ) -> $crate::StoreResult<Vec<kontor_domain::record::Record>> {
                self.flush().await?;
                let mut out = Vec::with_capacity(ids.len());
                for chunk in $crate::sql::statement_chunks(ids) {
                    out.extend(records(
                        fetch_all(&mut *self.tx, self.dialect.get_many(entity, chunk)).await?,
                    )?);
                }
                Ok(out)
            }

            async fn unique_holders(
                &mut self,
                entity: kontor_domain::Entity,
                key: &str,
                values: &[String],
            ) -> $crate::StoreResult<Vec<(String, String)>> {
                use $crate::sql::RowAccess;
                self.flush().await?;
                let mut out = Vec::new();
                for chunk in $crate::sql::statement_chunks(values) {
                    for row in fetch_all(
                        &mut *self.tx,
                        $crate::sql::unique_holders(self.dialect, entity, key, chunk),
                    )
                    .await?
                    {
                        out.push((row.req_text("value")?, row.req_text("record_id")?));
                    }
                }
                Ok(out)
            }

            fn now(&self) -> kontor_domain::time::Timestamp {
                self.now
            }

            fn schema_version(&self) -> i64 {
                self.schema_version
            }

            async fn bump_schema_version(&mut self) -> $crate::StoreResult<()> {
                if self.memo.is_some() {
                    self.schema_bumped = true;
                    return Ok(());
                }
                self.flush().await?;
                execute(
                    &mut *self.tx,
                    $crate::sql::stmt($crate::sql::BUMP_SCHEMA_VERSION, vec![]),
                )
                .await
                .map(|_| ())
            }

            async fn append(
                &mut self,
                entries: Vec<kontor_domain::journal::NewJournalEntry>,
            ) -> $crate::StoreResult<Vec<kontor_domain::journal::Appended>> {
                self.flush().await?;
                if entries.is_empty() {
                    return Ok(vec![]);
                }
                let n = i64::try_from(entries.len())
                    .map_err(|e| $crate::StoreError::Other(e.to_string()))?;
                let at = kontor_domain::time::to_micros(self.now);
                let first = if self.memo.is_some() {
                    self.last_seq + 1
                } else {
                    let advance = $crate::sql::stmt(
                        $crate::sql::ADVANCE_HEAD,
                        vec![$crate::sql::Arg::Int(n), $crate::sql::Arg::Int(at)],
                    );
                    let head = fetch_optional(&mut *self.tx, advance)
                        .await?
                        .ok_or_else(|| {
                            $crate::StoreError::Corrupt("journal head row is missing".into())
                        })?;
                    int_of(&head, "seq")? - n + 1
                };
                self.last_seq = first + n - 1;
                let appended = entries
                    .iter()
                    .enumerate()
                    .map(|(i, e)| kontor_domain::journal::Appended {
                        seq: first + i as i64,
                        entity: e.entity,
                        record_id: e.record_id.clone(),
                        op: e.op,
                    })
                    .collect();
                let mut seq = first;
                let mut rest = entries.into_iter();
                for size in $crate::sql::statement_sizes(rest.len()) {
                    let chunk: Vec<_> = rest.by_ref().take(size).collect();
                    let len = chunk.len() as i64;
                    execute(&mut *self.tx, self.dialect.insert_journal(seq, at, chunk)).await?;
                    seq += len;
                }
                Ok(appended)
            }

            async fn journal(
                &mut self,
                q: &$crate::JournalQuery,
            ) -> $crate::StoreResult<Vec<kontor_domain::journal::JournalEntry>> {
                self.flush().await?;
                fetch_all(&mut *self.tx, self.dialect.journal(q))
                    .await?
                    .iter()
                    .map($crate::sql::journal_from_row)
                    .collect()
            }

            async fn scrub(
                &mut self,
                entity: kontor_domain::Entity,
                id: &str,
            ) -> $crate::StoreResult<()> {
                self.flush().await?;
                use $crate::sql::Arg;
                execute(
                    &mut *self.tx,
                    $crate::sql::stmt(
                        $crate::sql::SCRUB,
                        vec![Arg::Text(entity.as_str().into()), Arg::Text(id.into())],
                    ),
                )
                .await
                .map(|_| ())
            }

            async fn set_password_hash(
                &mut self,
                user_id: &str,
                hash: &str,
            ) -> $crate::StoreResult<()> {
                self.flush().await?;
                use $crate::sql::Arg;
                execute(
                    &mut *self.tx,
                    $crate::sql::stmt(
                        $crate::sql::SET_PASSWORD_HASH,
                        vec![
                            Arg::Text(user_id.into()),
                            Arg::Text(hash.into()),
                            Arg::Int(kontor_domain::time::to_micros(self.now)),
                        ],
                    ),
                )
                .await
                .map(|_| ())
            }

            async fn remove_password_hash(&mut self, user_id: &str) -> $crate::StoreResult<()> {
                self.flush().await?;
                use $crate::sql::Arg;
                execute(
                    &mut *self.tx,
                    $crate::sql::stmt(
                        $crate::sql::REMOVE_PASSWORD_HASH,
                        vec![Arg::Text(user_id.into())],
                    ),
                )
                .await
                .map(|_| ())
            }

            async fn next_counter(&mut self, name: &str) -> $crate::StoreResult<i64> {
                self.flush().await?;
                use $crate::sql::Arg;
                let row = fetch_optional(
                    &mut *self.tx,
                    $crate::sql::stmt($crate::sql::NEXT_COUNTER, vec![Arg::Text(name.into())]),
                )
                .await?
                .ok_or_else(|| $crate::StoreError::Other("counter returned no row".into()))?;
                int_of(&row, "value")
            }

            async fn save_progress(
                &mut self,
                p: &$crate::JobProgress,
            ) -> $crate::StoreResult<()> {
                self.flush().await?;
                for stmt in $crate::sql::save_progress(p, self.now) {
                    execute(&mut *self.tx, stmt).await?;
                }
                Ok(())
            }

            async fn commit(self: Box<Self>) -> $crate::StoreResult<()> {
                let mut this = *self;
                this.flush().await?;
                this.tx.commit().await.map_err($crate::engine::db_err)?;
                // Only a committed transaction moves the head; a rolled-back one leaves no hole.
                if let Some(mut m) = this.memo {
                    m.seq = this.last_seq;
                    m.at = m.at.max(kontor_domain::time::to_micros(this.now));
                    if this.schema_bumped {
                        m.schema_version += 1;
                    }
                }
                Ok(())
            }
        }
    };
}

pub(crate) use sql_engine;
