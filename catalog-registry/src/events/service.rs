//! `EventService`: `Watch` streams the events a caller may see from a
//! sequence number on, first from the log, then live from the hub (back to
//! the log whenever it falls behind), each event once and in order;
//! `ListEvents` pages through the log (the pull feed). Every event read,
//! seen or not, advances the position a reader resumes from.

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use mesh_contracts::catalog::event_service_server::EventService;
use mesh_contracts::catalog::{ListEventsRequest, ListEventsResponse, WatchRequest, WatchResponse};
use mesh_grpc::auth::Principal;
use mesh_grpc::auth::layer::TokenExpiry;
use tokio::sync::{broadcast, mpsc, watch};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::cloudevent::to_proto;
use super::hub::EventHub;
use super::kinds;
use super::slots::{Slot, WatchSlots};
use super::visibility::Viewer;
use crate::error::{RegistryError, Result};
use crate::store::Store;
use crate::store::events::{self, EventFilter, StoredEvent};
use crate::validate;

/// Events a `ListEvents` page holds unless asked for fewer.
pub const DEFAULT_PAGE: usize = 100;
/// The most events one `ListEvents` page holds.
pub const MAX_PAGE: usize = 1000;
/// The most type filters one request names.
pub const MAX_TYPES: usize = 32;
/// The longest type filter.
const MAX_TYPE_BYTES: usize = 100;
/// Events read from the log at a time.
const READ: usize = 500;
/// A `ListEvents` call reads at most this many pages of the log looking for
/// events the caller may see, then answers with what it found (and where to
/// go on), so one call's work stays bounded.
const MAX_READS: usize = 20;
/// How often a quiet `Watch` sends a heartbeat with its resume position.
pub const HEARTBEAT: Duration = Duration::from_secs(15);
/// Responses queued for a slow `Watch` client.
const QUEUE: usize = 64;

/// The event service.
#[derive(Debug, Clone)]
pub struct Events {
    store: Store,
    hub: EventHub,
    slots: WatchSlots,
}

impl Events {
    /// Serves `store`'s log, fanned out by `hub`.
    pub fn new(store: Store, hub: EventHub) -> Self {
        Self { store, hub, slots: WatchSlots::default() }
    }

    /// Up to `page` events after `after` that `caller` may see and
    /// `wanted` names, and where to go on (`ListEvents`, the pull feed);
    /// `after` is checked as `Watch` checks it.
    pub async fn list(
        &self,
        caller: Principal,
        wanted: &Wanted,
        after: i64,
        page: usize,
    ) -> Result<ListEventsResponse> {
        list(&self.store, caller, wanted, after, page).await
    }

    /// The newest `page` events that `caller` may see and `wanted` names,
    /// newest first.
    pub async fn newest(
        &self,
        caller: Principal,
        wanted: &Wanted,
        page: usize,
    ) -> Result<ListEventsResponse> {
        let store = &self.store;
        let newest = store.read(events::latest).await?;
        let mut viewer = Viewer::new(caller);
        let (mut before, mut found) = (newest + 1, Vec::new());
        'reads: for _ in 0..MAX_READS {
            let filter = wanted.filter.clone();
            let read = store.read(move |db| events::newest_before(db, before, &filter, READ)).await?;
            for event in &read {
                before = event.sequence;
                if wanted.matches(event) && viewer.sees(store, event).await? {
                    found.push(to_proto(event));
                    if found.len() == page {
                        break 'reads;
                    }
                }
            }
            if read.len() < READ {
                break;
            }
        }
        let oldest = store.read(|db| events::trimmed_through(db)).await? + 1;
        Ok(ListEventsResponse { events: found, next_after_sequence: newest, oldest_sequence: oldest })
    }
}

/// Where a stream starts.
#[derive(Debug, Clone, Copy)]
pub struct Position {
    /// After this sequence number (0: every event kept).
    pub after: i64,
    /// After the newest event instead.
    pub from_now: bool,
}

impl Events {
    /// The events `caller` may see that `wanted` names, from `position` on,
    /// as `Watch` streams them (each once, in order, with heartbeats); the
    /// stream ends when the receiver is dropped or the registry stops.
    pub async fn follow(
        &self,
        caller: Principal,
        wanted: Wanted,
        position: Position,
    ) -> Result<mpsc::Receiver<Result<WatchResponse, Status>>> {
        self.stream(caller, wanted, position, (None, None)).await
    }

    /// [`Events::follow`] for a `Watch` call: holding its `slot`, and ending
    /// when its token `expires`.
    async fn stream(
        &self,
        caller: Principal,
        wanted: Wanted,
        position: Position,
        (slot, expires): (Option<Slot>, Option<SystemTime>),
    ) -> Result<mpsc::Receiver<Result<WatchResponse, Status>>> {
        // Subscribed before the first read of the log: nothing written
        // between that read and the live stream is missed.
        let live = self.hub.subscribe();
        let after = start(&self.store, position.after, position.from_now).await?;
        // Refused now, as a status, rather than in the stream.
        read_after(&self.store, after, &wanted, 0).await?;
        let (sender, receiver) = mpsc::channel(QUEUE);
        let watcher = Watcher {
            store: self.store.clone(),
            wanted,
            viewer: Viewer::new(caller),
            last: after,
            sender,
            expires,
            _slot: slot,
        };
        tokio::spawn(watcher.run(live, self.hub.stopping()));
        Ok(receiver)
    }
}

/// What a reader asked for, checked.
#[derive(Debug, Clone, Default)]
pub struct Wanted {
    /// The product and domain (in SQL).
    pub filter: EventFilter,
    /// Exact types, or prefixes (ending in `*`, kept without it).
    types: Vec<(String, bool)>,
}

impl Wanted {
    /// Checks the filters of a request.
    pub fn checked(product: &str, domain: &str, types: &[String]) -> Result<Self> {
        let product = match product.trim() {
            "" => String::new(),
            name => validate::product_name("product", name)?.to_owned(),
        };
        let domain = domain.trim().to_owned();
        if !domain.is_empty() {
            validate::domain("domain", &domain)?;
        }
        if types.len() > MAX_TYPES {
            return Err(RegistryError::invalid(
                "types",
                format!(
                    "{} types named; name at most {MAX_TYPES} (a prefix such as `mesh.access.*` covers many)",
                    types.len()
                ),
            ));
        }
        let types = types
            .iter()
            .map(|t| {
                let t = t.trim();
                match t.strip_suffix('*') {
                    Some(prefix) if prefix.starts_with("mesh.") && prefix.len() <= MAX_TYPE_BYTES => {
                        Ok((prefix.to_owned(), true))
                    }
                    None if kinds::ALL.contains(&t) => Ok((t.to_owned(), false)),
                    _ => Err(RegistryError::invalid(
                        "types",
                        format!(
                            "`{}` is no event type; use one of {}, or a prefix of them ending in `*` (e.g. \
                             `mesh.access.*`)",
                            t.chars().take(MAX_TYPE_BYTES).collect::<String>(),
                            kinds::ALL.join(", ")
                        ),
                    )),
                }
            })
            .collect::<Result<_>>()?;
        Ok(Self { filter: EventFilter { product, domain }, types })
    }

    /// Whether `event` is one the reader asked for.
    pub fn matches(&self, event: &StoredEvent) -> bool {
        (self.filter.product.is_empty() || event.product == self.filter.product)
            && (self.filter.domain.is_empty() || event.domain == self.filter.domain)
            && (self.types.is_empty()
                || self
                    .types
                    .iter()
                    .any(|(t, prefix)| if *prefix { event.kind.starts_with(t) } else { event.kind == *t }))
    }
}

/// What one read of the log gave.
struct Read {
    /// The events after the position that the filter names, oldest first.
    events: Vec<StoredEvent>,
    /// Where a reader stands once it has considered them: the last one's
    /// sequence number, or, when the read reached the end of the log, the
    /// newest event's at the time of the read (whatever it was about, so
    /// the position tells nothing of events about the filtered products
    /// the reader may not see).
    position: i64,
}

/// The events after `after` that `wanted` names, at most `limit`, refused
/// when retention deleted some of them (0 reads from the oldest kept).
async fn read_after(store: &Store, after: i64, wanted: &Wanted, limit: usize) -> Result<Read> {
    let filter = wanted.filter.clone();
    store
        .read(move |db| {
            // The newest first: an event committed after it is read next time.
            let newest = events::latest(db)?;
            let from = if after == 0 { events::trimmed_through(db)? } else { after };
            let read = events::after(db, (from, newest), &filter, limit)?;
            // Checked after the read too: a trim may commit in between.
            let trimmed = events::trimmed_through(db)?;
            if from < trimmed {
                return Err(RegistryError::EventsTrimmed { after, trimmed });
            }
            let position = match read.last() {
                Some(last) if read.len() == limit => last.sequence,
                _ => newest.max(from),
            };
            Ok(Read { events: read, position })
        })
        .await
}

/// Where a reader starts: after `after`, or after the newest event. A
/// position past the newest event is refused: it comes from another log
/// (a catalog restored or replaced), and waiting there would skip events.
async fn start(store: &Store, after: i64, from_now: bool) -> Result<i64> {
    if after < 0 {
        return Err(RegistryError::invalid("after_sequence", "is negative; use 0 for every event kept"));
    }
    let newest = store.read(events::latest).await?;
    if from_now {
        return Ok(newest);
    }
    if after > newest {
        return Err(RegistryError::invalid(
            "after_sequence",
            format!(
                "{after} is past the newest event of this catalog's log (was it restored or replaced?); start \
                 again from 0 or from now"
            ),
        ));
    }
    Ok(after)
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchResponse, Status>> + Send>>;

#[tonic::async_trait]
impl EventService for Events {
    type WatchStream = WatchStream;

    async fn watch(&self, request: Request<WatchRequest>) -> Result<Response<WatchStream>, Status> {
        let caller = mesh_grpc::auth::layer::caller(request.extensions())?;
        let expires = request.extensions().get::<TokenExpiry>().map(|expiry| expiry.0);
        let request = request.into_inner();
        let wanted = Wanted::checked(&request.product, &request.domain, &request.types)?;
        let slot = self.slots.take(&format!("{}\n{}", caller.issuer, caller.subject))?;
        let position = Position { after: request.after_sequence, from_now: request.from_now };
        let receiver = self.stream(caller, wanted, position, (Some(slot), expires)).await?;
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }

    async fn list_events(
        &self,
        request: Request<ListEventsRequest>,
    ) -> Result<Response<ListEventsResponse>, Status> {
        let caller = mesh_grpc::auth::layer::caller(request.extensions())?;
        let request = request.into_inner();
        let wanted = Wanted::checked(&request.product, &request.domain, &request.types)?;
        let page = page_size(request.page_size)?;
        if request.newest_first {
            return Ok(Response::new(self.newest(caller, &wanted, page).await?));
        }
        Ok(Response::new(self.list(caller, &wanted, request.after_sequence, page).await?))
    }
}

/// The page size asked for, checked.
pub fn page_size(asked: i32) -> Result<usize> {
    match asked {
        0 => Ok(DEFAULT_PAGE),
        n if n < 0 => {
            Err(RegistryError::invalid("page_size", format!("{n} is negative; use 1 to {MAX_PAGE}, or 0")))
        }
        n => Ok((n as usize).min(MAX_PAGE)),
    }
}

async fn list(
    store: &Store,
    caller: Principal,
    wanted: &Wanted,
    after: i64,
    page: usize,
) -> Result<ListEventsResponse> {
    let mut position = start(store, after, false).await?;
    let mut viewer = Viewer::new(caller);
    let mut found = Vec::new();
    'reads: for _ in 0..MAX_READS {
        let read = read_after(store, position, wanted, READ).await?;
        for event in &read.events {
            if found.len() == page {
                break 'reads;
            }
            position = event.sequence;
            viewer.observe(event);
            if wanted.matches(event) && viewer.sees(store, event).await? {
                found.push(to_proto(event));
            }
        }
        position = read.position;
        if read.events.len() < READ {
            break;
        }
    }
    let oldest = store.read(|db| events::trimmed_through(db)).await? + 1;
    Ok(ListEventsResponse { events: found, next_after_sequence: position, oldest_sequence: oldest })
}

/// One `Watch` stream's task.
struct Watcher {
    store: Store,
    wanted: Wanted,
    viewer: Viewer,
    /// The last event considered.
    last: i64,
    sender: mpsc::Sender<Result<WatchResponse, Status>>,
    /// When the caller's token expires: the stream ends then.
    expires: Option<SystemTime>,
    /// Held while a `Watch` stream is open.
    _slot: Option<Slot>,
}

impl Watcher {
    async fn run(
        mut self,
        mut live: broadcast::Receiver<Arc<StoredEvent>>,
        mut stopping: watch::Receiver<bool>,
    ) {
        let left = self.expires.map(|at| at.duration_since(SystemTime::now()).unwrap_or_default());
        let expired = async move {
            match left {
                Some(left) => tokio::time::sleep(left).await,
                None => std::future::pending().await,
            }
        };
        let followed = tokio::select! {
            followed = self.follow(&mut live) => followed,
            _ = stopping.wait_for(|stopping| *stopping) => Err(Status::unavailable(format!(
                "the registry is shutting down; watch again with after_sequence {} to resume",
                self.last
            ))),
            () = expired => Err(Status::unauthenticated(format!(
                "your token expired; watch again with a current token and after_sequence {} to resume",
                self.last
            ))),
        };
        if let Err(status) = followed {
            // The client may be gone already.
            let _ = self.sender.send(Err(status)).await;
        }
    }

    /// Catches up from the log, then follows the hub until the client
    /// leaves; back to the log whenever the hub ran ahead of it.
    async fn follow(&mut self, live: &mut broadcast::Receiver<Arc<StoredEvent>>) -> Result<(), Status> {
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        heartbeat.reset();
        loop {
            self.catch_up().await?;
            loop {
                let received = tokio::select! {
                    received = live.recv() => received,
                    _ = heartbeat.tick() => {
                        self.send(None).await?;
                        continue;
                    }
                    () = self.sender.closed() => return Ok(()),
                };
                match received {
                    Ok(event) if event.sequence <= self.last => {}
                    Ok(event) => self.consider(&event).await?,
                    Err(broadcast::error::RecvError::Lagged(_)) => break,
                    Err(broadcast::error::RecvError::Closed) => {
                        return Err(Status::unavailable(format!(
                            "the registry is shutting down; watch again with after_sequence {} to resume",
                            self.last
                        )));
                    }
                }
            }
        }
    }

    /// Reads the log from the last event considered until it is read out
    /// (or the client left).
    async fn catch_up(&mut self) -> Result<(), Status> {
        loop {
            if self.sender.is_closed() {
                return Err(Status::cancelled("the client left"));
            }
            let read = read_after(&self.store, self.last, &self.wanted, READ).await?;
            let done = read.events.len() < READ;
            for event in &read.events {
                self.consider(event).await?;
            }
            self.last = self.last.max(read.position);
            if done {
                return Ok(());
            }
        }
    }

    /// Sends `event` if the caller asked for it and may see it.
    async fn consider(&mut self, event: &StoredEvent) -> Result<(), Status> {
        self.last = event.sequence;
        self.viewer.observe(event);
        if self.wanted.matches(event) && self.viewer.sees(&self.store, event).await? {
            self.send(Some(event)).await?;
        }
        Ok(())
    }

    async fn send(&self, event: Option<&StoredEvent>) -> Result<(), Status> {
        let response = WatchResponse { event: event.map(to_proto), resume_after: self.last };
        self.sender.send(Ok(response)).await.map_err(|_| Status::cancelled("the client left"))
    }
}
