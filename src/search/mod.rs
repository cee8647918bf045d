//! Message search: a tantivy index in `<data dir>/search/`, derived from redb (which stays the
//! source of truth), kept fresh by its own thread, and queried with access checked against
//! the store at query time.
//!
//! The writer hands each committed message, edit and delete to a [`Feed`] (a bounded queue
//! that never blocks it: when full, the index is marked stale and a catch-up pass re-reads
//! redb). The indexer thread (`indexer`) applies them and commits every 500 ms or 1,000
//! updates; it builds the index from redb when it is missing, damaged, of an older format, or
//! removed while the server runs. Until a build finishes, searches answer
//! [`SearchError::Unavailable`]; while an open index is catching up, results are served with
//! `complete: false`.

pub mod analyzer;
mod indexer;
pub mod query;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;

use serde::Serialize;
use tantivy::collector::TopDocs;
use tantivy::query::{
    BooleanQuery, Occur, PhraseQuery, RangeQuery, RegexQuery, TermQuery, TermSetQuery,
};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing,
    TextOptions, Value,
};
use tantivy::{DocAddress, IndexReader, Order, TantivyDocument, Term};

use crate::config::limits;
use crate::store::{ConversationId, Message, Store, StoreError};
use analyzer::Kind;
pub use query::{Query, Within};

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error(
        "search is getting ready: its index is being built from the stored messages; try again in a moment"
    )]
    Unavailable,
    #[error(transparent)]
    Invalid(#[from] query::Invalid),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the search index failed: {0}")]
    Index(#[from] tantivy::TantivyError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Newest,
    Best,
}

/// One found message, with the byte ranges of `body` that matched (UTF-8 offsets, sorted,
/// never overlapping, always on character boundaries).
#[derive(Debug, Serialize)]
pub struct Hit {
    pub message: Message,
    pub highlights: Vec<[usize; 2]>,
}

#[derive(Debug, Serialize)]
pub struct Found {
    pub hits: Vec<Hit>,
    /// False while the index is catching up with messages it missed: some may be absent.
    pub complete: bool,
}

/// The index's fields. The schema is built the same way every time, so handles agree between
/// the indexer and searches.
#[derive(Debug, Clone, Copy)]
struct Fields {
    /// `<conversation>/<seq>`: one document per message, replaced on edit, removed on delete.
    key: Field,
    conversation: Field,
    seq: Field,
    from: Field,
    /// Unix ms: date filters and newest-first order.
    sent_at: Field,
    /// The message's text and its files' names.
    body: Field,
    /// 1 when the message carries files: `has:file`.
    has_file: Field,
}

fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let body = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(analyzer::NAME)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    let fields = Fields {
        key: builder.add_text_field("key", STRING),
        conversation: builder.add_text_field("conversation", STRING | STORED),
        seq: builder.add_u64_field("seq", STORED),
        from: builder.add_u64_field("from", INDEXED),
        sent_at: builder.add_u64_field("sent_at", INDEXED | FAST),
        body: builder.add_text_field("body", body),
        has_file: builder.add_u64_field("has_file", INDEXED),
    };
    (builder.build(), fields)
}

fn key_of(conversation: &ConversationId, seq: u64) -> String {
    format!("{conversation}/{seq}")
}

/// What the search handle and the indexer thread share.
struct Shared {
    fields: Fields,
    dir: PathBuf,
    /// The committed index to search, `None` while it is being built.
    reader: RwLock<Option<IndexReader>>,
    /// An update could not be queued: the indexer must re-read redb.
    stale: AtomicBool,
    /// The indexer is re-reading redb into an open index.
    catching_up: AtomicBool,
    /// A search found the index unreadable: the indexer should build it afresh.
    rebuild: AtomicBool,
}

enum Op {
    /// Index (or re-index) this message. Boxed: the queue's slots are allocated up front, at
    /// the size of the largest variant.
    Put(Box<Message>),
    Remove(ConversationId, u64),
    Stop,
}

/// The writer's side: hands committed changes to the indexer without ever waiting.
#[derive(Clone)]
pub struct Feed {
    queue: SyncSender<Op>,
    shared: Arc<Shared>,
}

impl Feed {
    /// A message was sent, edited, deleted or reacted to: index its current state.
    pub fn message(&self, message: &Message) {
        let op = if message.deleted {
            Op::Remove(message.conversation.clone(), message.seq)
        } else {
            Op::Put(Box::new(message.clone()))
        };
        match self.queue.try_send(op) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.shared.stale.store(true, Ordering::SeqCst);
            }
        }
    }
}

/// The search service: owns the indexer thread.
pub struct Search {
    shared: Arc<Shared>,
    feed: Feed,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Search {
    /// Starts the indexer on `dir` (opening, or building in the background); returns at once.
    pub fn start(dir: PathBuf, store: Store) -> Search {
        let (queue, ops) = mpsc::sync_channel(limits::SEARCH_QUEUE);
        let shared = Arc::new(Shared {
            fields: schema().1,
            dir,
            reader: RwLock::new(None),
            stale: AtomicBool::new(false),
            catching_up: AtomicBool::new(false),
            rebuild: AtomicBool::new(false),
        });
        let feed = Feed {
            queue,
            shared: shared.clone(),
        };
        let thread = indexer::spawn(shared.clone(), store, ops);
        Search {
            shared,
            feed,
            thread: Mutex::new(Some(thread)),
        }
    }

    pub fn feed(&self) -> Feed {
        self.feed.clone()
    }

    /// Commits what is queued and stops the indexer. Blocks: call it from a blocking context,
    /// after the writer has stopped.
    pub fn shutdown(&self) {
        let _ = self.feed.queue.send(Op::Stop);
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }

    fn reader(&self) -> Option<IndexReader> {
        self.shared
            .reader
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Up to `limit` messages `user` may see now that match `query`. Blocking.
    pub fn find(
        &self,
        store: &Store,
        user: u64,
        query: &Query,
        limit: usize,
        sort: Sort,
    ) -> Result<Found, SearchError> {
        let reader = self.reader().ok_or(SearchError::Unavailable)?;
        let complete = !self.shared.stale.load(Ordering::SeqCst)
            && !self.shared.catching_up.load(Ordering::SeqCst);
        let nothing = || {
            Ok(Found {
                hits: Vec::new(),
                complete,
            })
        };
        let Some(plan) = self.plan(store, user, query)? else {
            return nothing();
        };
        let searcher = reader.searcher();
        let fields = self.shared.fields;
        // Some hits may be dropped by the store's checks (withheld DMs, a message deleted since
        // the last commit), so ask for a few more and page on if needed.
        let batch = limit + 10;
        let mut offset = 0;
        let mut seen = HashSet::new();
        let mut messages = Vec::new();
        for _ in 0..5 {
            let found: Vec<DocAddress> = match sort {
                Sort::Newest => searcher
                    .search(
                        &plan.query,
                        &TopDocs::with_limit(batch)
                            .and_offset(offset)
                            .order_by_u64_field("sent_at", Order::Desc),
                    )
                    .map_err(|e| self.unreadable(e))?
                    .into_iter()
                    .map(|(_, address)| address)
                    .collect(),
                Sort::Best => searcher
                    .search(
                        &plan.query,
                        &TopDocs::with_limit(batch)
                            .and_offset(offset)
                            .order_by_score(),
                    )
                    .map_err(|e| self.unreadable(e))?
                    .into_iter()
                    .map(|(_, address)| address)
                    .collect(),
            };
            let mut keys = Vec::with_capacity(found.len());
            for address in &found {
                let doc: TantivyDocument =
                    searcher.doc(*address).map_err(|e| self.unreadable(e))?;
                let conversation = doc
                    .get_first(fields.conversation)
                    .and_then(|v| v.as_str())
                    .and_then(ConversationId::parse);
                let seq = doc.get_first(fields.seq).and_then(|v| v.as_u64());
                if let (Some(conversation), Some(seq)) = (conversation, seq)
                    && seen.insert((conversation.clone(), seq))
                {
                    keys.push((conversation, seq));
                }
            }
            messages.extend(store.search_hits(user, &keys)?);
            if messages.len() >= limit || found.len() < batch {
                break;
            }
            offset += batch;
        }
        messages.truncate(limit);
        let mut analyzer = analyzer::analyzer();
        let hits = messages
            .into_iter()
            .map(|message| {
                let highlights = highlights(&mut analyzer, &message.body, &plan.highlight);
                Hit {
                    message,
                    highlights,
                }
            })
            .collect();
        Ok(Found { hits, complete })
    }

    /// An index that cannot be read is rebuilt; this search answers "not ready".
    fn unreadable(&self, error: tantivy::TantivyError) -> SearchError {
        tracing::error!(%error, "the search index could not be read; rebuilding it");
        self.shared.rebuild.store(true, Ordering::SeqCst);
        SearchError::Unavailable
    }

    /// The tantivy query for `query` within what `user` may search, or `None` if it can match
    /// nothing.
    fn plan(&self, store: &Store, user: u64, query: &Query) -> Result<Option<Plan>, SearchError> {
        let fields = self.shared.fields;
        let invalid = |message: String| SearchError::Invalid(query::Invalid(message));
        let mut scope: Vec<ConversationId> = Vec::new();
        let everywhere = store.search_scope(user)?;
        match &query.within {
            None => scope.extend(everywhere.into_iter().map(|s| s.conversation)),
            Some(Within::Room(name)) => {
                let wanted = name.to_lowercase();
                scope.extend(
                    everywhere
                        .into_iter()
                        .filter(|s| {
                            s.room_name.as_ref().map(|n| n.to_lowercase()) == Some(wanted.clone())
                        })
                        .map(|s| s.conversation),
                );
                if scope.is_empty() {
                    return Err(invalid(format!("you are in no room named {name}")));
                }
            }
            Some(Within::Dm(name)) => {
                let other = store
                    .user_id_by_name(name)?
                    .ok_or_else(|| invalid(format!("there is no user named {name}")))?;
                let dm = ConversationId::dm(user, other);
                scope.extend(
                    everywhere
                        .into_iter()
                        .map(|s| s.conversation)
                        .filter(|c| *c == dm),
                );
            }
        }
        if scope.is_empty() {
            return Ok(None);
        }
        let mut clauses: Vec<(Occur, Box<dyn tantivy::query::Query>)> = vec![(
            Occur::Must,
            Box::new(TermSetQuery::new(
                scope
                    .iter()
                    .map(|c| Term::from_field_text(fields.conversation, c.as_str())),
            )),
        )];
        if query.has_file {
            clauses.push((
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_u64(fields.has_file, 1),
                    IndexRecordOption::Basic,
                )),
            ));
        }
        if let Some(name) = &query.from {
            let from = store
                .user_id_by_name(name)?
                .ok_or_else(|| invalid(format!("there is no user named {name}")))?;
            clauses.push((
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_u64(fields.from, from),
                    IndexRecordOption::Basic,
                )),
            ));
        }
        if query.before.is_some() || query.after.is_some() {
            use std::ops::Bound;
            let bound = |ms: Option<u64>, inclusive: bool| match ms {
                Some(ms) if inclusive => Bound::Included(Term::from_field_u64(fields.sent_at, ms)),
                Some(ms) => Bound::Excluded(Term::from_field_u64(fields.sent_at, ms)),
                None => Bound::Unbounded,
            };
            clauses.push((
                Occur::Must,
                Box::new(RangeQuery::new(
                    bound(query.after, true),
                    bound(query.before, false),
                )),
            ));
        }
        let mut analyzer = analyzer::analyzer();
        let mut highlight = Vec::new();
        let mut text_clauses = 0;
        for word in &query.words {
            for term in analyzer::query_terms(&mut analyzer, word) {
                clauses.push((Occur::Must, term_query(fields.body, &term, true)?));
                highlight.push(Wanted {
                    text: term.text,
                    prefix: term.kind == Kind::Word,
                });
                text_clauses += 1;
            }
        }
        for phrase in &query.phrases {
            let terms = analyzer::query_terms(&mut analyzer, phrase);
            if terms.len() >= 2 && terms.iter().all(|t| t.kind == Kind::Word) {
                let words = terms
                    .iter()
                    .map(|t| Term::from_field_text(fields.body, &t.text))
                    .collect();
                clauses.push((Occur::Must, Box::new(PhraseQuery::new(words))));
                text_clauses += 1;
            } else {
                // One word, or CJK (whose pairs already fix the characters' order): each term
                // exactly.
                for term in &terms {
                    clauses.push((Occur::Must, term_query(fields.body, term, false)?));
                    text_clauses += 1;
                }
            }
            highlight.extend(terms.into_iter().map(|t| Wanted {
                text: t.text,
                prefix: false,
            }));
        }
        let asked_for_text = !query.words.is_empty() || !query.phrases.is_empty();
        let filtered = query.from.is_some()
            || query.within.is_some()
            || query.before.is_some()
            || query.after.is_some();
        if asked_for_text && text_clauses == 0 && !filtered {
            // Only punctuation: nothing to look for.
            return Ok(None);
        }
        Ok(Some(Plan {
            query: Box::new(BooleanQuery::new(clauses)),
            highlight,
        }))
    }
}

struct Plan {
    query: Box<dyn tantivy::query::Query>,
    highlight: Vec<Wanted>,
}

/// A query term as highlighting matches it.
struct Wanted {
    text: String,
    prefix: bool,
}

/// A word matches by prefix ("inv" finds "invoice", "Rechnungs" finds "Rechnungsadresse");
/// CJK terms and quoted words match exactly.
fn term_query(
    body: Field,
    term: &analyzer::Term,
    as_prefix: bool,
) -> Result<Box<dyn tantivy::query::Query>, SearchError> {
    if as_prefix && term.kind == Kind::Word {
        let pattern = format!("{}.*", regex_escape(&term.text));
        return Ok(Box::new(RegexQuery::from_pattern(&pattern, body)?));
    }
    Ok(Box::new(TermQuery::new(
        Term::from_field_text(body, &term.text),
        IndexRecordOption::WithFreqs,
    )))
}

fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~\"".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The byte ranges of `body` whose terms match, merged where they touch or overlap.
fn highlights(
    analyzer: &mut tantivy::tokenizer::TextAnalyzer,
    body: &str,
    wanted: &[Wanted],
) -> Vec<[usize; 2]> {
    let mut ranges: Vec<[usize; 2]> = analyzer::terms(analyzer, body)
        .into_iter()
        .filter(|t| {
            wanted.iter().any(|w| {
                if w.prefix {
                    t.text.starts_with(&w.text)
                } else {
                    t.text == w.text
                }
            })
        })
        .map(|t| [t.start, t.end])
        .collect();
    ranges.sort_unstable();
    let mut merged: Vec<[usize; 2]> = Vec::with_capacity(ranges.len());
    for range in ranges {
        match merged.last_mut() {
            Some(last) if range[0] <= last[1] => last[1] = last[1].max(range[1]),
            _ => merged.push(range),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marked(body: &str, wanted: &[(&str, bool)]) -> Vec<String> {
        let wanted: Vec<Wanted> = wanted
            .iter()
            .map(|(text, prefix)| Wanted {
                text: (*text).to_owned(),
                prefix: *prefix,
            })
            .collect();
        highlights(&mut analyzer::analyzer(), body, &wanted)
            .into_iter()
            .map(|[s, e]| body[s..e].to_owned())
            .collect()
    }

    #[test]
    fn highlights_cover_whole_words_and_merge_cjk_pairs() {
        assert_eq!(
            marked("Invoice for the Café", &[("inv", true), ("cafe", false)]),
            ["Invoice", "Café"]
        );
        assert_eq!(
            marked("明天的会议取消了", &[("会议", false), ("议取", false)]),
            ["会议取"]
        );
        assert!(marked("invoice", &[("inv", false)]).is_empty());
    }

    #[test]
    fn regex_metacharacters_are_escaped() {
        assert_eq!(regex_escape("a.b*c"), "a\\.b\\*c");
    }
}
