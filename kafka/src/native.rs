//! Direct calls into librdkafka's C API for what rust-rdkafka does not wrap, or wraps without the
//! broker's error text: DescribeTopics, DescribeCluster, CreateTopics, CreatePartitions,
//! IncrementalAlterConfigs, DeleteTopics, ListOffsets and ElectLeaders; and, for the requests
//! librdkafka has no API for (Alter/ListPartitionReassignments, DescribeLogDirs),
//! [`raw_request`], which sends a body encoded in `protocol` (or `protocol_logdirs`) over
//! librdkafka's own broker connection.
//!
//! One idiom for all of it:
//! * every object we create is held by [`Native<T>`], which frees it exactly once, on drop, with
//!   the destructor that [`NativeDrop`] names for `T`;
//! * the client handle is only ever borrowed ([`Handle`]) from the rust-rdkafka client that owns
//!   it, so it cannot outlive that client;
//! * every admin request goes through [`admin_request`], which sets the request timeout, uses a
//!   private result queue, polls it with a bound and checks the event's type and error;
//! * every pointer librdkafka hands back is checked for null before it is read, and per-item
//!   errors keep the broker's text ([`outcome`]).
//!
//! All calls block; callers run them on a blocking thread.

use std::collections::HashMap;
use std::ffi::{CStr, CString, c_char};
use std::marker::PhantomData;
use std::ptr::{self, NonNull};
use std::time::Duration;

use rdkafka::bindings as rd;
use rdkafka::client::{Client, ClientContext};
use rdkafka::error::RDKafkaErrorCode;

/// A failed librdkafka call: the error code and the most specific text we got for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NativeError {
    pub code: RDKafkaErrorCode,
    pub message: String,
}

impl NativeError {
    pub(crate) fn new(code: RDKafkaErrorCode, message: impl Into<String>) -> NativeError {
        NativeError {
            code,
            message: message.into(),
        }
    }
}

/// Turns a code and an optional text into a result. The broker's (or librdkafka's) own text is
/// kept when there is one, because it names the refused value; otherwise the code's description.
pub(crate) fn outcome(code: RDKafkaErrorCode, text: Option<String>) -> Result<(), NativeError> {
    if code == RDKafkaErrorCode::NoError {
        return Ok(());
    }
    let message = match text {
        Some(t) if !t.trim().is_empty() => t,
        _ => code.to_string(),
    };
    Err(NativeError::new(code, message))
}

// ------------------------------------------------------------------ ownership

/// A librdkafka object type and the C function that frees it.
///
/// # Safety
/// `destroy` must be the destructor librdkafka documents for objects of this type.
pub(crate) unsafe trait NativeDrop {
    /// Frees the object.
    ///
    /// # Safety
    /// `ptr` is a live object of this type that the caller owns and never uses again.
    unsafe fn destroy(ptr: *mut Self);
}

macro_rules! native_drop {
    ($($ty:ty => $destroy:path),* $(,)?) => {$(
        // SAFETY: `$destroy` is librdkafka's destructor for `$ty` (see rdkafka.h).
        unsafe impl NativeDrop for $ty {
            unsafe fn destroy(ptr: *mut Self) {
                // SAFETY: the caller guarantees `ptr` is live, owned and never used again.
                unsafe { $destroy(ptr) }
            }
        }
    )*};
}

native_drop! {
    rd::rd_kafka_queue_t => rd::rd_kafka_queue_destroy,
    rd::rd_kafka_AdminOptions_t => rd::rd_kafka_AdminOptions_destroy,
    rd::rd_kafka_event_t => rd::rd_kafka_event_destroy,
    rd::rd_kafka_error_t => rd::rd_kafka_error_destroy,
    rd::rd_kafka_NewTopic_t => rd::rd_kafka_NewTopic_destroy,
    rd::rd_kafka_NewPartitions_t => rd::rd_kafka_NewPartitions_destroy,
    rd::rd_kafka_DeleteTopic_t => rd::rd_kafka_DeleteTopic_destroy,
    rd::rd_kafka_ConfigResource_t => rd::rd_kafka_ConfigResource_destroy,
    rd::rd_kafka_TopicCollection_t => rd::rd_kafka_TopicCollection_destroy,
    rd::rd_kafka_topic_partition_list_t => rd::rd_kafka_topic_partition_list_destroy,
    rd::rd_kafka_consumer_group_metadata_t => rd::rd_kafka_consumer_group_metadata_destroy,
    rd::rd_kafka_ElectLeaders_t => rd::rd_kafka_ElectLeaders_destroy,
}

pub(crate) mod acl;
pub(crate) mod connect;
pub(crate) mod scram;

/// The one owner of a librdkafka object: non-null, freed exactly once when dropped. Not `Send`:
/// objects stay on the blocking thread that made them.
pub(crate) struct Native<T: NativeDrop> {
    ptr: NonNull<T>,
}

impl<T: NativeDrop> Native<T> {
    /// Takes ownership of what a librdkafka constructor returned; `None` when it returned null.
    ///
    /// # Safety
    /// `ptr` is null, or a live object that nobody else frees.
    pub(crate) unsafe fn own(ptr: *mut T) -> Option<Native<T>> {
        NonNull::new(ptr).map(|ptr| Native { ptr })
    }

    /// Like [`Native::own`], with null reported as an error naming the constructor.
    ///
    /// # Safety
    /// As for [`Native::own`].
    pub(crate) unsafe fn own_or(ptr: *mut T, what: &str) -> Result<Native<T>, NativeError> {
        // SAFETY: forwarded from the caller.
        unsafe { Native::own(ptr) }
            .ok_or_else(|| NativeError::new(RDKafkaErrorCode::Fail, format!("{what} failed")))
    }

    pub(crate) fn as_ptr(&self) -> *mut T {
        self.ptr.as_ptr()
    }
}

impl<T: NativeDrop> Drop for Native<T> {
    fn drop(&mut self) {
        // SAFETY: `own` made this value the only owner of a live object, and drop runs once.
        unsafe { T::destroy(self.ptr.as_ptr()) }
    }
}

/// A client handle borrowed from the rust-rdkafka client that owns (and will destroy) it.
#[derive(Clone, Copy)]
pub(crate) struct Handle<'a> {
    ptr: *mut rd::rd_kafka_t,
    client: PhantomData<&'a ()>,
}

impl<'a> Handle<'a> {
    pub(crate) fn of<C: ClientContext>(client: &'a Client<C>) -> Handle<'a> {
        Handle {
            ptr: client.native_ptr(),
            client: PhantomData,
        }
    }

    pub(crate) fn as_ptr(self) -> *mut rd::rd_kafka_t {
        self.ptr
    }
}

// ------------------------------------------------------------------ small helpers

/// Copies a C string; null reads as "".
///
/// # Safety
/// `p` is null or a NUL-terminated string that lives for this call.
unsafe fn c_string(p: *const c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        // SAFETY: non-null and NUL-terminated by the caller's guarantee.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

fn c_str(value: &str, what: &str) -> Result<CString, NativeError> {
    CString::new(value).map_err(|_| {
        NativeError::new(
            RDKafkaErrorCode::InvalidArgument,
            format!("{what} contains NUL"),
        )
    })
}

/// A numeric error code (librdkafka's or the broker's own, which librdkafka's enum includes)
/// as an error code; a number librdkafka does not know is `Fail`, never an invalid enum.
pub(crate) fn error_code(code: i32) -> RDKafkaErrorCode {
    rd::rd_kafka_resp_err_t::try_from(code)
        .map(RDKafkaErrorCode::from)
        .unwrap_or(RDKafkaErrorCode::Fail)
}

pub(crate) fn timeout_ms(timeout: Duration) -> i32 {
    timeout.as_millis().clamp(1, i32::MAX as u128) as i32
}

/// The error held by an `rd_kafka_error_t` that we do not own (e.g. part of a result).
///
/// # Safety
/// `err` is null or a live error object.
unsafe fn borrowed_error(err: *const rd::rd_kafka_error_t) -> Result<(), NativeError> {
    if err.is_null() {
        return Ok(());
    }
    // SAFETY: `err` is live and non-null.
    let (code, text) = unsafe {
        (
            RDKafkaErrorCode::from(rd::rd_kafka_error_code(err)),
            c_string(rd::rd_kafka_error_string(err)),
        )
    };
    outcome(code, Some(text))
}

/// The error in an `rd_kafka_error_t` that a call handed to us; frees it.
///
/// # Safety
/// `err` is null or a live error object the caller owns.
unsafe fn owned_error(err: *mut rd::rd_kafka_error_t) -> Result<(), NativeError> {
    // SAFETY: ownership is passed to us by the caller.
    match unsafe { Native::own(err) } {
        // SAFETY: the owner keeps the error live during the read.
        Some(err) => unsafe { borrowed_error(err.as_ptr()) },
        None => Ok(()),
    }
}

/// An `errstr` buffer for librdkafka calls that report failures as text.
struct ErrBuf([c_char; 512]);

impl ErrBuf {
    fn new() -> ErrBuf {
        ErrBuf([0; 512])
    }
    fn ptr(&mut self) -> *mut c_char {
        self.0.as_mut_ptr()
    }
    fn len(&self) -> usize {
        self.0.len()
    }
    fn text(&self) -> String {
        // SAFETY: the buffer starts zeroed and librdkafka writes NUL-terminated text into it,
        // never past `len()`; the last byte is never written, so a terminator is always there.
        unsafe { c_string(self.0.as_ptr()) }
    }
}

/// Borrows a C array of `count` object pointers that lives in a result event, refusing a null
/// array or a null element.
///
/// # Safety
/// `array` is null or points to `count` pointers that stay valid while the event lives.
unsafe fn items<T>(
    array: *const *const T,
    count: usize,
    what: &str,
) -> Result<Vec<*const T>, NativeError> {
    if count == 0 {
        return Ok(Vec::new());
    }
    if array.is_null() {
        return Err(NativeError::new(
            RDKafkaErrorCode::Fail,
            format!("{what}: librdkafka returned no array for {count} items"),
        ));
    }
    (0..count)
        .map(|i| {
            // SAFETY: `i < count` and the array holds `count` elements.
            let item = unsafe { *array.add(i) };
            if item.is_null() {
                Err(NativeError::new(
                    RDKafkaErrorCode::Fail,
                    format!("{what}: item {i} is null"),
                ))
            } else {
                Ok(item)
            }
        })
        .collect()
}

// ------------------------------------------------------------------ the admin-call skeleton

/// What an admin request is: librdkafka's operation and the result event type that answers it.
#[derive(Clone, Copy)]
pub(crate) struct AdminOp {
    op: rd::rd_kafka_admin_op_t,
    result: rd::rd_kafka_event_type_t,
    name: &'static str,
}

impl AdminOp {
    const DESCRIBE_TOPICS: AdminOp = AdminOp {
        op: rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBETOPICS,
        result: rd::RD_KAFKA_EVENT_DESCRIBETOPICS_RESULT,
        name: "DescribeTopics",
    };
    const CREATE_TOPICS: AdminOp = AdminOp {
        op: rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_CREATETOPICS,
        result: rd::RD_KAFKA_EVENT_CREATETOPICS_RESULT,
        name: "CreateTopics",
    };
    const CREATE_PARTITIONS: AdminOp = AdminOp {
        op: rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_CREATEPARTITIONS,
        result: rd::RD_KAFKA_EVENT_CREATEPARTITIONS_RESULT,
        name: "CreatePartitions",
    };
    const INCREMENTAL_ALTER_CONFIGS: AdminOp = AdminOp {
        op: rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_INCREMENTALALTERCONFIGS,
        result: rd::RD_KAFKA_EVENT_INCREMENTALALTERCONFIGS_RESULT,
        name: "IncrementalAlterConfigs",
    };
    const DELETE_TOPICS: AdminOp = AdminOp {
        op: rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DELETETOPICS,
        result: rd::RD_KAFKA_EVENT_DELETETOPICS_RESULT,
        name: "DeleteTopics",
    };
    const DESCRIBE_CLUSTER: AdminOp = AdminOp {
        op: rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBECLUSTER,
        result: rd::RD_KAFKA_EVENT_DESCRIBECLUSTER_RESULT,
        name: "DescribeCluster",
    };
    const ELECT_LEADERS: AdminOp = AdminOp {
        op: rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_ELECTLEADERS,
        result: rd::RD_KAFKA_EVENT_ELECTLEADERS_RESULT,
        name: "ElectLeaders",
    };
    const LIST_OFFSETS: AdminOp = AdminOp {
        op: rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_LISTOFFSETS,
        result: rd::RD_KAFKA_EVENT_LISTOFFSETS_RESULT,
        name: "ListOffsets",
    };
}

/// Request options beyond the timeout, which every request gets.
#[derive(Clone, Copy, Default)]
pub(crate) struct RequestFlags {
    /// The broker checks the request and changes nothing.
    validate_only: bool,
    /// Offsets stop at the last stable offset (ListOffsets).
    read_committed: bool,
}

/// librdkafka enforces the request timeout itself and then answers with a timed-out result; this
/// margin only bounds the wait for an event that never comes.
const LOST_EVENT_MARGIN: Duration = Duration::from_secs(2);

/// The one way admin requests are made: options with the request timeout (and `flags`), a
/// private result queue, `submit` (which makes the call on them), a poll of that queue bounded
/// by the timeout, and the result event checked for its type and for a request-level error.
fn admin_request(
    rk: Handle<'_>,
    op: AdminOp,
    flags: RequestFlags,
    timeout: Duration,
    submit: impl FnOnce(&Native<rd::rd_kafka_AdminOptions_t>, &Native<rd::rd_kafka_queue_t>),
) -> Result<Native<rd::rd_kafka_event_t>, NativeError> {
    // SAFETY: `rk` is borrowed from a live client; the new options object is ours.
    let options = unsafe {
        Native::own_or(
            rd::rd_kafka_AdminOptions_new(rk.as_ptr(), op.op),
            "creating admin options",
        )?
    };
    let mut errstr = ErrBuf::new();
    // SAFETY: `options` is live; `errstr` is a writable buffer of the length we pass.
    let err = unsafe {
        rd::rd_kafka_AdminOptions_set_request_timeout(
            options.as_ptr(),
            timeout_ms(timeout),
            errstr.ptr(),
            errstr.len(),
        )
    };
    outcome(err.into(), Some(errstr.text()))?;
    if flags.validate_only {
        // SAFETY: as above.
        let err = unsafe {
            rd::rd_kafka_AdminOptions_set_validate_only(
                options.as_ptr(),
                1,
                errstr.ptr(),
                errstr.len(),
            )
        };
        outcome(err.into(), Some(errstr.text()))?;
    }
    if flags.read_committed {
        // SAFETY: `options` is live; the returned error (if any) becomes ours.
        unsafe {
            owned_error(rd::rd_kafka_AdminOptions_set_isolation_level(
                options.as_ptr(),
                rd::rd_kafka_IsolationLevel_t::RD_KAFKA_ISOLATION_LEVEL_READ_COMMITTED,
            ))?;
        }
    }
    // SAFETY: `rk` is live; the new queue is ours.
    let queue = unsafe {
        Native::own_or(
            rd::rd_kafka_queue_new(rk.as_ptr()),
            "creating a result queue",
        )?
    };
    submit(&options, &queue);
    // SAFETY: `queue` is live; a returned event is ours.
    let event = unsafe {
        Native::own(rd::rd_kafka_queue_poll(
            queue.as_ptr(),
            timeout_ms(timeout + LOST_EVENT_MARGIN),
        ))
    }
    .ok_or_else(|| {
        NativeError::new(
            RDKafkaErrorCode::OperationTimedOut,
            format!("{}: no answer within {timeout:?}", op.name),
        )
    })?;
    // SAFETY: `event` is live.
    let kind = unsafe { rd::rd_kafka_event_type(event.as_ptr()) };
    if kind != op.result {
        return Err(NativeError::new(
            RDKafkaErrorCode::Fail,
            format!(
                "{}: unexpected event type {kind} on the result queue",
                op.name
            ),
        ));
    }
    // SAFETY: `event` is live; its error string lives as long as it does.
    let (code, text) = unsafe {
        (
            RDKafkaErrorCode::from(rd::rd_kafka_event_error(event.as_ptr())),
            c_string(rd::rd_kafka_event_error_string(event.as_ptr())),
        )
    };
    outcome(code, Some(text))?;
    Ok(event)
}

/// The typed result inside an admin result event, checked for null.
fn result_of<R>(
    event: &Native<rd::rd_kafka_event_t>,
    op: AdminOp,
    get: unsafe extern "C" fn(*mut rd::rd_kafka_event_t) -> *const R,
) -> Result<*const R, NativeError> {
    // SAFETY: `event` is live and `get` is the accessor for its (already checked) type.
    let result = unsafe { get(event.as_ptr()) };
    if result.is_null() {
        Err(NativeError::new(
            RDKafkaErrorCode::Fail,
            format!("{}: the result event holds no result", op.name),
        ))
    } else {
        Ok(result)
    }
}

/// Per-topic outcomes of CreateTopics, CreatePartitions and DeleteTopics, with the broker's
/// error text (which rust-rdkafka drops); the first failure wins.
///
/// # Safety
/// `results`/`count` come from a result event that is still live.
unsafe fn topic_results(
    results: *mut *const rd::rd_kafka_topic_result_t,
    count: usize,
    op: AdminOp,
) -> Result<(), NativeError> {
    // SAFETY: forwarded from the caller.
    for r in unsafe { items(results, count, op.name)? } {
        // SAFETY: `r` is a non-null element of a live result.
        let (code, text) = unsafe {
            (
                RDKafkaErrorCode::from(rd::rd_kafka_topic_result_error(r)),
                c_string(rd::rd_kafka_topic_result_error_string(r)),
            )
        };
        outcome(code, Some(text))?;
    }
    Ok(())
}

// ------------------------------------------------------------------ the calls

pub(crate) struct NativePartition {
    pub id: i32,
    pub leader: Option<i32>,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
}

pub(crate) struct NativeTopic {
    pub topic_id: String,
    pub partitions: Vec<NativePartition>,
}

/// Describes one topic; `Ok(None)` when it does not exist.
pub(crate) fn describe_topic(
    rk: Handle<'_>,
    name: &str,
    timeout: Duration,
) -> Result<Option<NativeTopic>, NativeError> {
    let mut all = describe_topics(rk, &[name.to_string()], timeout)?;
    match all.remove(name) {
        Some(result) => result,
        None => Ok(None),
    }
}

/// Each topic's description, `None` when it does not exist, or why it could not be described.
pub(crate) type TopicDescriptions = HashMap<String, Result<Option<NativeTopic>, NativeError>>;

/// Describes many topics in one DescribeTopics request. The call fails as a whole only when
/// the request does; each topic gets its own outcome.
pub(crate) fn describe_topics(
    rk: Handle<'_>,
    names: &[String],
    timeout: Duration,
) -> Result<TopicDescriptions, NativeError> {
    let cnames = names
        .iter()
        .map(|n| c_str(n, "topic name"))
        .collect::<Result<Vec<_>, _>>()?;
    let mut ptrs: Vec<*const c_char> = cnames.iter().map(|c| c.as_ptr()).collect();
    // SAFETY: `ptrs` holds valid C strings (owned by `cnames`, alive here); librdkafka copies
    // them into the new collection.
    let topics = unsafe {
        Native::own_or(
            rd::rd_kafka_TopicCollection_of_topic_names(ptrs.as_mut_ptr(), ptrs.len()),
            "building a topic collection",
        )?
    };
    let op = AdminOp::DESCRIBE_TOPICS;
    let event = admin_request(
        rk,
        op,
        RequestFlags::default(),
        timeout,
        |options, queue| {
            // SAFETY: all four objects are live; librdkafka copies the collection.
            unsafe {
                rd::rd_kafka_DescribeTopics(
                    rk.as_ptr(),
                    topics.as_ptr(),
                    options.as_ptr(),
                    queue.as_ptr(),
                )
            }
        },
    )?;
    let result = result_of(&event, op, rd::rd_kafka_event_DescribeTopics_result)?;
    let mut count = 0usize;
    // SAFETY: `result` belongs to the live `event`; so does the array.
    let descs = unsafe {
        items(
            rd::rd_kafka_DescribeTopics_result_topics(result, &mut count),
            count,
            op.name,
        )?
    };
    let mut out = HashMap::with_capacity(descs.len());
    for desc in descs {
        // SAFETY: `desc` is a non-null description inside the live event.
        let name = unsafe { c_string(rd::rd_kafka_TopicDescription_name(desc)) };
        // SAFETY: as above.
        let described = unsafe { topic_description(desc) };
        out.insert(name, described);
    }
    Ok(out)
}

/// Reads one topic description of a DescribeTopics result.
///
/// # Safety
/// `desc` is a non-null description inside a live result event.
unsafe fn topic_description(
    desc: *const rd::rd_kafka_TopicDescription_t,
) -> Result<Option<NativeTopic>, NativeError> {
    // SAFETY: `desc` is live (caller).
    match unsafe { borrowed_error(rd::rd_kafka_TopicDescription_error(desc)) } {
        Err(e) if e.code == RDKafkaErrorCode::UnknownTopicOrPartition => return Ok(None),
        other => other?,
    }
    // SAFETY: `desc` is live; the id and its base64 text live as long as the event.
    let topic_id = unsafe {
        let id = rd::rd_kafka_TopicDescription_topic_id(desc);
        if id.is_null() {
            String::new()
        } else {
            c_string(rd::rd_kafka_Uuid_base64str(id))
        }
    };
    let mut pcount = 0usize;
    // SAFETY: `desc` is live; the array belongs to it.
    let parts = unsafe {
        items(
            rd::rd_kafka_TopicDescription_partitions(desc, &mut pcount),
            pcount,
            "DescribeTopics partitions",
        )?
    };
    let mut partitions = Vec::with_capacity(parts.len());
    for p in parts {
        let (mut rcount, mut icount) = (0usize, 0usize);
        // SAFETY: `p` is a non-null partition of the live description; the leader may be null
        // (no leader), the replica and ISR arrays and their nodes are checked by `items`.
        let partition = unsafe {
            let leader = rd::rd_kafka_TopicPartitionInfo_leader(p);
            let replicas = items(
                rd::rd_kafka_TopicPartitionInfo_replicas(p, &mut rcount),
                rcount,
                "DescribeTopics replicas",
            )?;
            let isr = items(
                rd::rd_kafka_TopicPartitionInfo_isr(p, &mut icount),
                icount,
                "DescribeTopics ISR",
            )?;
            NativePartition {
                id: rd::rd_kafka_TopicPartitionInfo_partition(p),
                leader: (!leader.is_null()).then(|| rd::rd_kafka_Node_id(leader)),
                replicas: replicas
                    .into_iter()
                    .map(|n| rd::rd_kafka_Node_id(n))
                    .collect(),
                isr: isr.into_iter().map(|n| rd::rd_kafka_Node_id(n)).collect(),
            }
        };
        partitions.push(partition);
    }
    partitions.sort_by_key(|p| p.id);
    Ok(Some(NativeTopic {
        topic_id,
        partitions,
    }))
}

/// A broker as DescribeCluster reports it.
pub(crate) struct NativeNode {
    pub id: i32,
    pub rack: Option<String>,
}

/// The cluster's live brokers, with their racks (`broker.rack`), which Metadata through
/// rust-rdkafka does not carry.
pub(crate) fn describe_cluster(
    rk: Handle<'_>,
    timeout: Duration,
) -> Result<Vec<NativeNode>, NativeError> {
    let op = AdminOp::DESCRIBE_CLUSTER;
    let event = admin_request(
        rk,
        op,
        RequestFlags::default(),
        timeout,
        |options, queue| {
            // SAFETY: all objects are live.
            unsafe { rd::rd_kafka_DescribeCluster(rk.as_ptr(), options.as_ptr(), queue.as_ptr()) }
        },
    )?;
    let result = result_of(&event, op, rd::rd_kafka_event_DescribeCluster_result)?;
    let mut count = 0usize;
    // SAFETY: `result` belongs to the live `event`; so do the array and its nodes.
    let nodes = unsafe {
        items(
            rd::rd_kafka_DescribeCluster_result_nodes(result, &mut count),
            count,
            op.name,
        )?
    };
    let mut out: Vec<NativeNode> = nodes
        .into_iter()
        .map(|n| {
            // SAFETY: `n` is a non-null node of the live event; the rack may be null.
            let (id, rack) = unsafe {
                let rack = rd::rd_kafka_Node_rack(n);
                (
                    rd::rd_kafka_Node_id(n),
                    (!rack.is_null()).then(|| c_string(rack)),
                )
            };
            NativeNode {
                id,
                rack: rack.filter(|r| !r.is_empty()),
            }
        })
        .collect();
    out.sort_by_key(|n| n.id);
    Ok(out)
}

/// Each partition's outcome of a leader election.
pub(crate) type PartitionOutcomes = HashMap<(String, i32), Result<(), NativeError>>;

/// A preferred-replica election (KIP-460) for the given partitions.
pub(crate) fn elect_preferred_leaders(
    rk: Handle<'_>,
    partitions: &[(String, i32)],
    timeout: Duration,
) -> Result<PartitionOutcomes, NativeError> {
    let list = partition_list(partitions)?;
    // SAFETY: `list` is live; librdkafka copies it into the new request object, which is ours.
    let request = unsafe {
        Native::own_or(
            rd::rd_kafka_ElectLeaders_new(
                rd::rd_kafka_ElectionType_t::RD_KAFKA_ELECTION_TYPE_PREFERRED,
                list.as_ptr(),
            ),
            "building an elect-leaders request",
        )?
    };
    let op = AdminOp::ELECT_LEADERS;
    let event = admin_request(
        rk,
        op,
        RequestFlags::default(),
        timeout,
        |options, queue| {
            // SAFETY: all objects are live; librdkafka copies the request object.
            unsafe {
                rd::rd_kafka_ElectLeaders(
                    rk.as_ptr(),
                    request.as_ptr(),
                    options.as_ptr(),
                    queue.as_ptr(),
                )
            }
        },
    )?;
    let result = result_of(&event, op, rd::rd_kafka_event_ElectLeaders_result)?;
    let mut count = 0usize;
    // SAFETY: `result` belongs to the live `event`; so does the array.
    let results = unsafe {
        items(
            rd::rd_kafka_ElectLeaders_result_partitions(result, &mut count) as *const *const _,
            count,
            op.name,
        )?
    };
    let mut out = HashMap::with_capacity(results.len());
    for r in results {
        // SAFETY: `r` is a non-null result of the live event; the partition (checked for null)
        // and the error object live as long as the event.
        let (key, outcome) = unsafe {
            let tp = rd::rd_kafka_topic_partition_result_partition(r);
            if tp.is_null() {
                return Err(NativeError::new(
                    RDKafkaErrorCode::Fail,
                    "ElectLeaders: a result without a partition",
                ));
            }
            let tp = &*tp;
            (
                (c_string(tp.topic), tp.partition),
                borrowed_error(rd::rd_kafka_topic_partition_result_error(r)),
            )
        };
        out.insert(key, outcome);
    }
    Ok(out)
}

/// A partition list holding `partitions`.
fn partition_list(
    partitions: &[(String, i32)],
) -> Result<Native<rd::rd_kafka_topic_partition_list_t>, NativeError> {
    // SAFETY: a fresh list, ours.
    let list = unsafe {
        Native::own_or(
            rd::rd_kafka_topic_partition_list_new(
                i32::try_from(partitions.len()).unwrap_or(i32::MAX),
            ),
            "building a partition list",
        )?
    };
    for (topic, partition) in partitions {
        let ctopic = c_str(topic, "topic name")?;
        // SAFETY: `list` is live; librdkafka copies the topic name.
        let elem = unsafe {
            rd::rd_kafka_topic_partition_list_add(list.as_ptr(), ctopic.as_ptr(), *partition)
        };
        if elem.is_null() {
            return Err(NativeError::new(
                RDKafkaErrorCode::Fail,
                "adding to a partition list failed",
            ));
        }
    }
    Ok(list)
}

unsafe extern "C" {
    /// `kafka/native/raw_request.c`: frames `body` as request `api_key`/`api_version`, sends it
    /// to broker `node_id` (-1: the controller) over librdkafka's connection and hands back
    /// the response body.
    fn ferry_raw_request(
        rk: *mut rd::rd_kafka_t,
        node_id: i32,
        api_key: i16,
        api_version: i16,
        flexver: std::ffi::c_int,
        body: *const c_char,
        body_len: usize,
        timeout_ms: std::ffi::c_int,
        resp: *mut *mut c_char,
        resp_len: *mut usize,
        errstr: *mut c_char,
        errstr_size: usize,
    ) -> std::ffi::c_int;
    fn ferry_raw_free(p: *mut c_char);
}

/// Sends a request librdkafka has no API for over librdkafka's own connection to the
/// controller (its TLS, SASL and version negotiation), bounded by `timeout`. `body` is the
/// request body without its trailing tagged-fields byte; the answer is the response body.
pub(crate) fn raw_request(
    rk: Handle<'_>,
    api_key: i16,
    api_version: i16,
    flexible: bool,
    body: &[u8],
    timeout: Duration,
) -> Result<Vec<u8>, NativeError> {
    raw_request_to(rk, None, api_key, api_version, flexible, body, timeout)
}

/// [`raw_request`] to one broker by node id (`None`: the controller), for requests each
/// broker answers for itself, such as DescribeLogDirs.
pub(crate) fn raw_request_to(
    rk: Handle<'_>,
    broker: Option<i32>,
    api_key: i16,
    api_version: i16,
    flexible: bool,
    body: &[u8],
    timeout: Duration,
) -> Result<Vec<u8>, NativeError> {
    let mut errstr = ErrBuf::new();
    let (mut resp, mut resp_len) = (ptr::null_mut::<c_char>(), 0usize);
    // SAFETY: `rk` is borrowed from a live client; `body` is valid for `body.len()` bytes and
    // copied before the call returns; `errstr` is writable for its length; on success `resp`
    // points to `resp_len` bytes we own and free with `ferry_raw_free`.
    let err = unsafe {
        ferry_raw_request(
            rk.as_ptr(),
            broker.unwrap_or(-1),
            api_key,
            api_version,
            flexible.into(),
            body.as_ptr().cast(),
            body.len(),
            timeout_ms(timeout),
            &mut resp,
            &mut resp_len,
            errstr.ptr(),
            errstr.len(),
        )
    };
    let code = error_code(err);
    let out = if resp.is_null() {
        Vec::new()
    } else {
        // SAFETY: `resp` holds `resp_len` bytes (see above); copied, then freed exactly once.
        unsafe {
            let bytes = std::slice::from_raw_parts(resp.cast::<u8>(), resp_len).to_vec();
            ferry_raw_free(resp);
            bytes
        }
    };
    outcome(code, Some(errstr.text()))?;
    Ok(out)
}

/// Sets and deletes (resets to default) topic config keys in one incremental request.
pub(crate) fn incremental_alter_topic(
    rk: Handle<'_>,
    name: &str,
    set: &[(String, String)],
    delete: &[String],
    validate_only: bool,
    timeout: Duration,
) -> Result<(), NativeError> {
    incremental_alter(
        rk,
        rd::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_TOPIC,
        name,
        set,
        delete,
        validate_only,
        timeout,
    )
}

/// Sets and deletes (resets to default) dynamic config keys of one broker (its id as the
/// resource name); librdkafka sends it to that broker.
pub(crate) fn incremental_alter_broker(
    rk: Handle<'_>,
    broker: i32,
    set: &[(String, String)],
    delete: &[String],
    timeout: Duration,
) -> Result<(), NativeError> {
    incremental_alter(
        rk,
        rd::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_BROKER,
        &broker.to_string(),
        set,
        delete,
        false,
        timeout,
    )
}

fn incremental_alter(
    rk: Handle<'_>,
    resource_type: rd::rd_kafka_ResourceType_t,
    name: &str,
    set: &[(String, String)],
    delete: &[String],
    validate_only: bool,
    timeout: Duration,
) -> Result<(), NativeError> {
    use rd::rd_kafka_AlterConfigOpType_t::{
        RD_KAFKA_ALTER_CONFIG_OP_TYPE_DELETE, RD_KAFKA_ALTER_CONFIG_OP_TYPE_SET,
    };
    let cname = c_str(name, "resource name")?;
    let mut ops = Vec::with_capacity(set.len() + delete.len());
    for (k, v) in set {
        ops.push((
            c_str(k, "config key")?,
            RD_KAFKA_ALTER_CONFIG_OP_TYPE_SET,
            Some(c_str(v, "config value")?),
        ));
    }
    for k in delete {
        ops.push((
            c_str(k, "config key")?,
            RD_KAFKA_ALTER_CONFIG_OP_TYPE_DELETE,
            None,
        ));
    }
    // SAFETY: `cname` is a valid C string, copied by librdkafka.
    let resource = unsafe {
        Native::own_or(
            rd::rd_kafka_ConfigResource_new(resource_type, cname.as_ptr()),
            "building a config resource",
        )?
    };
    for (key, op, value) in &ops {
        let value = value.as_ref().map_or(ptr::null(), |v| v.as_ptr());
        // SAFETY: `resource` is live, key and value are valid C strings (value may be null for
        // DELETE) that librdkafka copies; a returned error object becomes ours.
        unsafe {
            owned_error(rd::rd_kafka_ConfigResource_add_incremental_config(
                resource.as_ptr(),
                key.as_ptr(),
                *op,
                value,
            ))?;
        }
    }
    let op = AdminOp::INCREMENTAL_ALTER_CONFIGS;
    let flags = RequestFlags {
        validate_only,
        ..RequestFlags::default()
    };
    let event = admin_request(rk, op, flags, timeout, |options, queue| {
        let mut resources = [resource.as_ptr()];
        // SAFETY: all objects are live; librdkafka copies the resources before returning.
        unsafe {
            rd::rd_kafka_IncrementalAlterConfigs(
                rk.as_ptr(),
                resources.as_mut_ptr(),
                resources.len(),
                options.as_ptr(),
                queue.as_ptr(),
            )
        }
    })?;
    let result = result_of(
        &event,
        op,
        rd::rd_kafka_event_IncrementalAlterConfigs_result,
    )?;
    let mut count = 0usize;
    // SAFETY: `result` belongs to the live `event`; so does the array.
    let resources = unsafe {
        items(
            rd::rd_kafka_IncrementalAlterConfigs_result_resources(result, &mut count),
            count,
            op.name,
        )?
    };
    for r in resources {
        // SAFETY: `r` is a non-null resource inside the live event.
        let (code, text) = unsafe {
            (
                RDKafkaErrorCode::from(rd::rd_kafka_ConfigResource_error(r)),
                c_string(rd::rd_kafka_ConfigResource_error_string(r)),
            )
        };
        outcome(code, Some(text))?;
    }
    Ok(())
}

pub(crate) struct CreateTopic<'a> {
    pub name: &'a str,
    /// -1 lets the broker choose (`num.partitions`).
    pub partitions: i32,
    /// -1 lets the broker choose (`default.replication.factor`).
    pub replication_factor: i32,
    pub config: &'a [(String, String)],
}

pub(crate) fn create_topic(
    rk: Handle<'_>,
    topic: &CreateTopic<'_>,
    validate_only: bool,
    timeout: Duration,
) -> Result<(), NativeError> {
    let cname = c_str(topic.name, "topic name")?;
    let mut errstr = ErrBuf::new();
    // SAFETY: `cname` is a valid C string (copied); `errstr` is writable for its length.
    let new_topic = unsafe {
        Native::own(rd::rd_kafka_NewTopic_new(
            cname.as_ptr(),
            topic.partitions,
            topic.replication_factor,
            errstr.ptr(),
            errstr.len(),
        ))
    }
    .ok_or_else(|| NativeError::new(RDKafkaErrorCode::InvalidRequest, errstr.text()))?;
    for (k, v) in topic.config {
        let (key, value) = (c_str(k, "config key")?, c_str(v, "config value")?);
        // SAFETY: `new_topic` is live; key and value are valid C strings that librdkafka copies.
        let err = unsafe {
            rd::rd_kafka_NewTopic_set_config(new_topic.as_ptr(), key.as_ptr(), value.as_ptr())
        };
        outcome(err.into(), Some(format!("config {k}={v} refused")))?;
    }
    let op = AdminOp::CREATE_TOPICS;
    let flags = RequestFlags {
        validate_only,
        ..RequestFlags::default()
    };
    let event = admin_request(rk, op, flags, timeout, |options, queue| {
        let mut topics = [new_topic.as_ptr()];
        // SAFETY: all objects are live; librdkafka copies the new-topic objects.
        unsafe {
            rd::rd_kafka_CreateTopics(
                rk.as_ptr(),
                topics.as_mut_ptr(),
                topics.len(),
                options.as_ptr(),
                queue.as_ptr(),
            )
        }
    })?;
    let result = result_of(&event, op, rd::rd_kafka_event_CreateTopics_result)?;
    let mut count = 0usize;
    // SAFETY: `result` and its array belong to the live `event`.
    unsafe {
        topic_results(
            rd::rd_kafka_CreateTopics_result_topics(result, &mut count),
            count,
            op,
        )
    }
}

pub(crate) fn create_partitions(
    rk: Handle<'_>,
    name: &str,
    new_total: i32,
    validate_only: bool,
    timeout: Duration,
) -> Result<(), NativeError> {
    let cname = c_str(name, "topic name")?;
    let total = usize::try_from(new_total).map_err(|_| {
        NativeError::new(
            RDKafkaErrorCode::InvalidPartitions,
            format!("partition count {new_total} is negative"),
        )
    })?;
    let mut errstr = ErrBuf::new();
    // SAFETY: `cname` is a valid C string (copied); `errstr` is writable for its length.
    let new_partitions = unsafe {
        Native::own(rd::rd_kafka_NewPartitions_new(
            cname.as_ptr(),
            total,
            errstr.ptr(),
            errstr.len(),
        ))
    }
    .ok_or_else(|| NativeError::new(RDKafkaErrorCode::InvalidPartitions, errstr.text()))?;
    let op = AdminOp::CREATE_PARTITIONS;
    let flags = RequestFlags {
        validate_only,
        ..RequestFlags::default()
    };
    let event = admin_request(rk, op, flags, timeout, |options, queue| {
        let mut parts = [new_partitions.as_ptr()];
        // SAFETY: all objects are live; librdkafka copies the new-partitions objects.
        unsafe {
            rd::rd_kafka_CreatePartitions(
                rk.as_ptr(),
                parts.as_mut_ptr(),
                parts.len(),
                options.as_ptr(),
                queue.as_ptr(),
            )
        }
    })?;
    let result = result_of(&event, op, rd::rd_kafka_event_CreatePartitions_result)?;
    let mut count = 0usize;
    // SAFETY: `result` and its array belong to the live `event`.
    unsafe {
        topic_results(
            rd::rd_kafka_CreatePartitions_result_topics(result, &mut count),
            count,
            op,
        )
    }
}

pub(crate) fn delete_topic(
    rk: Handle<'_>,
    name: &str,
    timeout: Duration,
) -> Result<(), NativeError> {
    let cname = c_str(name, "topic name")?;
    // SAFETY: `cname` is a valid C string, copied by librdkafka.
    let delete = unsafe {
        Native::own_or(
            rd::rd_kafka_DeleteTopic_new(cname.as_ptr()),
            "building a delete-topic request",
        )?
    };
    let op = AdminOp::DELETE_TOPICS;
    let event = admin_request(
        rk,
        op,
        RequestFlags::default(),
        timeout,
        |options, queue| {
            let mut topics = [delete.as_ptr()];
            // SAFETY: all objects are live; librdkafka copies the delete-topic objects.
            unsafe {
                rd::rd_kafka_DeleteTopics(
                    rk.as_ptr(),
                    topics.as_mut_ptr(),
                    topics.len(),
                    options.as_ptr(),
                    queue.as_ptr(),
                )
            }
        },
    )?;
    let result = result_of(&event, op, rd::rd_kafka_event_DeleteTopics_result)?;
    let mut count = 0usize;
    // SAFETY: `result` and its array belong to the live `event`.
    unsafe {
        topic_results(
            rd::rd_kafka_DeleteTopics_result_topics(result, &mut count),
            count,
            op,
        )
    }
}

/// Each partition's offset, or why it has none.
pub(crate) type PartitionOffsets = HashMap<(String, i32), Result<i64, NativeError>>;

/// Latest offsets of many partitions in one ListOffsets request (librdkafka sends one request
/// per partition leader, not per partition). With `read_committed` an offset is the last
/// stable offset, the end a read_committed consumer can reach. Each partition gets its own
/// outcome; the call fails as a whole only if the request does.
pub(crate) fn list_end_offsets(
    rk: Handle<'_>,
    partitions: &[(String, i32)],
    read_committed: bool,
    timeout: Duration,
) -> Result<PartitionOffsets, NativeError> {
    // SAFETY: a fresh list, ours.
    let list = unsafe {
        Native::own_or(
            rd::rd_kafka_topic_partition_list_new(
                i32::try_from(partitions.len()).unwrap_or(i32::MAX),
            ),
            "building a partition list",
        )?
    };
    for (topic, partition) in partitions {
        let ctopic = c_str(topic, "topic name")?;
        // SAFETY: `list` is live; librdkafka copies the topic name and returns the element it
        // added, which lives in `list`.
        unsafe {
            let elem =
                rd::rd_kafka_topic_partition_list_add(list.as_ptr(), ctopic.as_ptr(), *partition);
            if elem.is_null() {
                return Err(NativeError::new(
                    RDKafkaErrorCode::Fail,
                    "adding to a partition list failed",
                ));
            }
            (*elem).offset = rd::rd_kafka_OffsetSpec_t::RD_KAFKA_OFFSET_SPEC_LATEST as i64;
        }
    }
    let op = AdminOp::LIST_OFFSETS;
    let flags = RequestFlags {
        read_committed,
        ..RequestFlags::default()
    };
    let event = admin_request(rk, op, flags, timeout, |options, queue| {
        // SAFETY: all objects are live; librdkafka copies the partition list.
        unsafe {
            rd::rd_kafka_ListOffsets(rk.as_ptr(), list.as_ptr(), options.as_ptr(), queue.as_ptr())
        }
    })?;
    let result = result_of(&event, op, rd::rd_kafka_event_ListOffsets_result)?;
    let mut count = 0usize;
    // SAFETY: `result` and its array belong to the live `event`.
    let infos = unsafe {
        items(
            rd::rd_kafka_ListOffsets_result_infos(result, &mut count) as *const *const _,
            count,
            op.name,
        )?
    };
    let mut out = HashMap::with_capacity(infos.len());
    for info in infos {
        // SAFETY: `info` is a non-null element of the live event; the partition it points to
        // (checked for null) and its topic string live as long as the event.
        let (key, code) = unsafe {
            let tp = rd::rd_kafka_ListOffsetsResultInfo_topic_partition(info);
            if tp.is_null() {
                return Err(NativeError::new(
                    RDKafkaErrorCode::Fail,
                    "ListOffsets: a result without a partition",
                ));
            }
            let tp = &*tp;
            (
                (c_string(tp.topic), tp.partition),
                (RDKafkaErrorCode::from(tp.err), tp.offset),
            )
        };
        let (err, offset) = code;
        out.insert(key, outcome(err, None).map(|()| offset));
    }
    Ok(out)
}

/// Drains the client's main event queue (logs and errors, which rust-rdkafka's admin client
/// never polls) and returns the last connection-level error it held, e.g. a SASL failure.
/// "All brokers are down" only summarises earlier errors, so it is returned only when there is
/// nothing more specific.
pub(crate) fn drain_connection_errors(rk: Handle<'_>) -> Option<String> {
    let (mut last, mut summary) = (None, None);
    // SAFETY: `rk` is live; the queue reference we get is ours to release.
    let queue = unsafe { Native::own(rd::rd_kafka_queue_get_main(rk.as_ptr())) }?;
    // SAFETY: `queue` is live; each polled event is ours.
    while let Some(event) = unsafe { Native::own(rd::rd_kafka_queue_poll(queue.as_ptr(), 0)) } {
        // SAFETY: `event` is live; the texts we copy live as long as it does.
        unsafe {
            match rd::rd_kafka_event_type(event.as_ptr()) {
                rd::RD_KAFKA_EVENT_LOG => {
                    let (mut fac, mut text, mut level) = (ptr::null(), ptr::null(), 0);
                    if rd::rd_kafka_event_log(event.as_ptr(), &mut fac, &mut text, &mut level) == 0
                        && level <= 3
                    {
                        last = Some(c_string(text));
                    }
                }
                rd::RD_KAFKA_EVENT_ERROR => {
                    let text = c_string(rd::rd_kafka_event_error_string(event.as_ptr()));
                    let code = RDKafkaErrorCode::from(rd::rd_kafka_event_error(event.as_ptr()));
                    if code == RDKafkaErrorCode::AllBrokersDown {
                        summary = Some(text);
                    } else {
                        last = Some(text);
                    }
                }
                _ => {}
            }
        }
    }
    last.or(summary)
}

/// Group metadata for a group id alone (no member, generation -1), for committing a group's
/// offsets inside a transaction without a consumer in that group.
pub(crate) fn group_metadata(
    group_id: &str,
) -> Result<Native<rd::rd_kafka_consumer_group_metadata_t>, NativeError> {
    let group = c_str(group_id, "group id")?;
    // SAFETY: `group` is a valid C string that librdkafka copies; the object is ours.
    unsafe {
        Native::own_or(
            rd::rd_kafka_consumer_group_metadata_new(group.as_ptr()),
            "creating group metadata",
        )
    }
}

/// The outcome of a transactional call that returns an `rd_kafka_error_t`: the error, and
/// whether it requires an abort or is fatal.
pub(crate) struct TxnError {
    pub error: NativeError,
    pub requires_abort: bool,
    pub fatal: bool,
}

/// Commits `offsets` for the group described by `metadata` in the producer's transaction.
pub(crate) fn send_offsets_to_transaction(
    rk: Handle<'_>,
    offsets: &rdkafka::TopicPartitionList,
    metadata: &Native<rd::rd_kafka_consumer_group_metadata_t>,
    timeout: Duration,
) -> Result<(), TxnError> {
    // SAFETY: `rk`, `offsets` and `metadata` are live for the call, which copies what it keeps
    // and hands us the returned error object.
    let error = unsafe {
        Native::own(rd::rd_kafka_send_offsets_to_transaction(
            rk.as_ptr(),
            offsets.ptr(),
            metadata.as_ptr(),
            timeout_ms(timeout),
        ))
    };
    let Some(error) = error else {
        return Ok(());
    };
    // SAFETY: `error` is live while we read it.
    let (result, requires_abort, fatal) = unsafe {
        (
            borrowed_error(error.as_ptr()),
            rd::rd_kafka_error_txn_requires_abort(error.as_ptr()) != 0,
            rd::rd_kafka_error_is_fatal(error.as_ptr()) != 0,
        )
    };
    let error = result
        .err()
        .unwrap_or_else(|| NativeError::new(RDKafkaErrorCode::Fail, "unknown transaction error"));
    Err(TxnError {
        error,
        requires_abort,
        fatal,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    thread_local! {
        static DESTROYED: Cell<usize> = const { Cell::new(0) };
    }

    /// A stand-in C object whose destructor counts calls.
    struct Counted;
    // SAFETY: objects are made with `Box::into_raw` and `destroy` is `Box::from_raw`.
    unsafe impl NativeDrop for Counted {
        unsafe fn destroy(ptr: *mut Self) {
            DESTROYED.with(|d| d.set(d.get() + 1));
            // SAFETY: `ptr` came from `Box::into_raw` and is freed only here.
            drop(unsafe { Box::from_raw(ptr) });
        }
    }

    #[test]
    fn the_owner_frees_exactly_once_and_refuses_null() {
        DESTROYED.with(|d| d.set(0));
        // SAFETY: a fresh box, owned by nobody else.
        let owned = unsafe { Native::own(Box::into_raw(Box::new(Counted))) }.unwrap();
        let moved = owned;
        assert_eq!(DESTROYED.with(Cell::get), 0, "moving must not free");
        drop(moved);
        assert_eq!(DESTROYED.with(Cell::get), 1);
        // SAFETY: null is allowed.
        assert!(unsafe { Native::<Counted>::own(ptr::null_mut()) }.is_none());
        // SAFETY: null is allowed.
        let err = unsafe { Native::<Counted>::own_or(ptr::null_mut(), "making a thing") }
            .err()
            .unwrap();
        assert_eq!(err.message, "making a thing failed");
        assert_eq!(DESTROYED.with(Cell::get), 1, "null is never freed");
    }

    #[test]
    fn real_librdkafka_objects_are_freed_by_their_owner() {
        // Each owner below frees a real object with its real destructor.
        let name = CString::new("t").unwrap();
        let mut errstr = ErrBuf::new();
        // SAFETY: valid arguments; the object is ours.
        let topic = unsafe {
            Native::own(rd::rd_kafka_NewTopic_new(
                name.as_ptr(),
                1,
                1,
                errstr.ptr(),
                errstr.len(),
            ))
        };
        assert!(topic.is_some());
        // SAFETY: a fresh list, ours.
        let list = unsafe { Native::own(rd::rd_kafka_topic_partition_list_new(1)) };
        assert!(list.is_some());
        assert!(group_metadata("g").is_ok());
    }

    #[test]
    fn constructor_errors_keep_librdkafka_text() {
        // A partition count of zero is refused by librdkafka itself, with text saying why.
        let err = new_partitions("t", 0).err().unwrap();
        assert_eq!(err.code, RDKafkaErrorCode::InvalidPartitions);
        assert!(!err.message.is_empty());
    }

    /// The constructor half of `create_partitions`, which needs no client.
    fn new_partitions(
        name: &str,
        total: usize,
    ) -> Result<Native<rd::rd_kafka_NewPartitions_t>, NativeError> {
        let cname = c_str(name, "topic name")?;
        let mut errstr = ErrBuf::new();
        // SAFETY: valid arguments; the object is ours.
        unsafe {
            Native::own(rd::rd_kafka_NewPartitions_new(
                cname.as_ptr(),
                total,
                errstr.ptr(),
                errstr.len(),
            ))
        }
        .ok_or_else(|| NativeError::new(RDKafkaErrorCode::InvalidPartitions, errstr.text()))
    }

    #[test]
    fn outcome_keeps_the_brokers_text_or_falls_back_to_the_code() {
        assert_eq!(
            outcome(RDKafkaErrorCode::NoError, Some("ignored".into())),
            Ok(())
        );
        let e = outcome(
            RDKafkaErrorCode::PolicyViolation,
            Some("retention.ms must be >= 1000".into()),
        )
        .unwrap_err();
        assert_eq!(e.code, RDKafkaErrorCode::PolicyViolation);
        assert_eq!(e.message, "retention.ms must be >= 1000");
        for text in [None, Some(String::new()), Some("  ".into())] {
            let e = outcome(RDKafkaErrorCode::TopicAlreadyExists, text).unwrap_err();
            assert_eq!(e.message, RDKafkaErrorCode::TopicAlreadyExists.to_string());
        }
    }

    #[test]
    fn errors_from_error_objects_are_extracted_and_freed() {
        let fmt = CString::new("%s").unwrap();
        let text = CString::new("Topic 'x' already exists.").unwrap();
        // SAFETY: a printf-style call with one string argument; the error object is ours.
        let raw = unsafe {
            rd::rd_kafka_error_new(
                rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS,
                fmt.as_ptr(),
                text.as_ptr(),
            )
        };
        // SAFETY: `raw` is a fresh error object we hand over.
        let e = unsafe { owned_error(raw) }.unwrap_err();
        assert_eq!(e.code, RDKafkaErrorCode::TopicAlreadyExists);
        assert_eq!(e.message, "Topic 'x' already exists.");
        // SAFETY: null means no error.
        assert_eq!(unsafe { owned_error(ptr::null_mut()) }, Ok(()));
    }

    #[test]
    fn arrays_with_null_are_refused() {
        let a = 1u8;
        let good = [&a as *const u8, &a as *const u8];
        // SAFETY: `good` holds two valid pointers.
        assert_eq!(unsafe { items(good.as_ptr(), 2, "x") }.unwrap().len(), 2);
        // SAFETY: a null array with zero items is never read.
        assert!(
            unsafe { items::<u8>(ptr::null(), 0, "x") }
                .unwrap()
                .is_empty()
        );
        // SAFETY: a null array is detected before it is read.
        assert!(unsafe { items::<u8>(ptr::null(), 3, "x") }.is_err());
        let holey = [&a as *const u8, ptr::null()];
        // SAFETY: `holey` holds two pointers, one of them null.
        let err = unsafe { items(holey.as_ptr(), 2, "x") }.unwrap_err();
        assert!(err.message.contains("item 1 is null"), "{}", err.message);
    }

    #[test]
    fn text_with_nul_is_refused_before_any_call() {
        let e = c_str("a\0b", "topic name").unwrap_err();
        assert_eq!(e.code, RDKafkaErrorCode::InvalidArgument);
        assert_eq!(e.message, "topic name contains NUL");
    }
}
