//! Admin calls librdkafka has but rust-rdkafka does not wrap: DescribeTopics (for topic ids)
//! and IncrementalAlterConfigs. Each call is blocking; callers run it on a blocking thread.

use std::ffi::{CStr, CString, c_char};
use std::ptr;
use std::time::Duration;

use rdkafka::bindings as rd;
use rdkafka::error::RDKafkaErrorCode;

#[derive(Debug, Clone)]
pub(crate) struct NativeError {
    pub code: RDKafkaErrorCode,
    pub message: String,
}

impl NativeError {
    fn new(code: RDKafkaErrorCode, message: impl Into<String>) -> NativeError {
        NativeError {
            code,
            message: message.into(),
        }
    }
}

/// A librdkafka client handle that the owning rust-rdkafka client keeps alive.
#[derive(Clone, Copy)]
pub(crate) struct Handle(pub *mut rd::rd_kafka_t);
// SAFETY: librdkafka handles are thread-safe; the owner outlives every call (see admin.rs).
unsafe impl Send for Handle {}

pub(crate) struct NativePartition {
    pub id: i32,
    pub leader: Option<i32>,
    pub replicas: Vec<i32>,
}

pub(crate) struct NativeTopic {
    pub topic_id: String,
    pub partitions: Vec<NativePartition>,
}

struct Queue(*mut rd::rd_kafka_queue_t);
impl Drop for Queue {
    fn drop(&mut self) {
        unsafe { rd::rd_kafka_queue_destroy(self.0) }
    }
}

struct Options(*mut rd::rd_kafka_AdminOptions_t);
impl Drop for Options {
    fn drop(&mut self) {
        unsafe { rd::rd_kafka_AdminOptions_destroy(self.0) }
    }
}

struct Event(*mut rd::rd_kafka_event_t);
impl Drop for Event {
    fn drop(&mut self) {
        unsafe { rd::rd_kafka_event_destroy(self.0) }
    }
}

unsafe fn c_string(p: *const c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

fn timeout_ms(timeout: Duration) -> i32 {
    timeout.as_millis().clamp(1, i32::MAX as u128) as i32
}

fn options(
    rk: Handle,
    op: rd::rd_kafka_admin_op_t,
    timeout: Duration,
    validate_only: bool,
) -> Result<Options, NativeError> {
    let opts = Options(unsafe { rd::rd_kafka_AdminOptions_new(rk.0, op) });
    let mut errstr = [0 as c_char; 512];
    let err = unsafe {
        rd::rd_kafka_AdminOptions_set_request_timeout(
            opts.0,
            timeout_ms(timeout),
            errstr.as_mut_ptr(),
            errstr.len(),
        )
    };
    check(err, &errstr)?;
    if validate_only {
        let err = unsafe {
            rd::rd_kafka_AdminOptions_set_validate_only(
                opts.0,
                1,
                errstr.as_mut_ptr(),
                errstr.len(),
            )
        };
        check(err, &errstr)?;
    }
    Ok(opts)
}

fn check(err: rd::rd_kafka_resp_err_t, errstr: &[c_char]) -> Result<(), NativeError> {
    let code = RDKafkaErrorCode::from(err);
    if code == RDKafkaErrorCode::NoError {
        Ok(())
    } else {
        Err(NativeError::new(code, unsafe { c_string(errstr.as_ptr()) }))
    }
}

/// Waits for the single result event of an admin call on `queue`.
fn wait(queue: &Queue, timeout: Duration) -> Result<Event, NativeError> {
    // librdkafka enforces the request timeout itself; the margin only guards against a lost event.
    let ev =
        unsafe { rd::rd_kafka_queue_poll(queue.0, timeout_ms(timeout + Duration::from_secs(5))) };
    if ev.is_null() {
        return Err(NativeError::new(
            RDKafkaErrorCode::OperationTimedOut,
            format!("no answer within {timeout:?}"),
        ));
    }
    let ev = Event(ev);
    let code = RDKafkaErrorCode::from(unsafe { rd::rd_kafka_event_error(ev.0) });
    if code != RDKafkaErrorCode::NoError {
        let message = unsafe { c_string(rd::rd_kafka_event_error_string(ev.0)) };
        return Err(NativeError::new(code, message));
    }
    Ok(ev)
}

/// Describes one topic; `Ok(None)` when it does not exist.
pub(crate) fn describe_topic(
    rk: Handle,
    name: &str,
    timeout: Duration,
) -> Result<Option<NativeTopic>, NativeError> {
    let cname = CString::new(name)
        .map_err(|_| NativeError::new(RDKafkaErrorCode::InvalidTopic, "topic name contains NUL"))?;
    let opts = options(
        rk,
        rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBETOPICS,
        timeout,
        false,
    )?;
    let queue = Queue(unsafe { rd::rd_kafka_queue_new(rk.0) });
    let mut names = [cname.as_ptr()];
    unsafe {
        let topics = rd::rd_kafka_TopicCollection_of_topic_names(names.as_mut_ptr(), 1);
        rd::rd_kafka_DescribeTopics(rk.0, topics, opts.0, queue.0);
        rd::rd_kafka_TopicCollection_destroy(topics);
    }
    let ev = wait(&queue, timeout)?;
    unsafe {
        let result = rd::rd_kafka_event_DescribeTopics_result(ev.0);
        if result.is_null() {
            return Err(NativeError::new(
                RDKafkaErrorCode::Fail,
                "unexpected admin result event",
            ));
        }
        let mut count = 0usize;
        let descs = rd::rd_kafka_DescribeTopics_result_topics(result, &mut count);
        if count == 0 {
            return Ok(None);
        }
        let desc = *descs;
        let err = rd::rd_kafka_TopicDescription_error(desc);
        if !err.is_null() {
            let code = RDKafkaErrorCode::from(rd::rd_kafka_error_code(err));
            if code == RDKafkaErrorCode::UnknownTopicOrPartition {
                return Ok(None);
            }
            if code != RDKafkaErrorCode::NoError {
                return Err(NativeError::new(
                    code,
                    c_string(rd::rd_kafka_error_string(err)),
                ));
            }
        }
        let id = rd::rd_kafka_TopicDescription_topic_id(desc);
        let topic_id = if id.is_null() {
            String::new()
        } else {
            c_string(rd::rd_kafka_Uuid_base64str(id))
        };
        let mut pcount = 0usize;
        let parts = rd::rd_kafka_TopicDescription_partitions(desc, &mut pcount);
        let mut partitions = Vec::with_capacity(pcount);
        for i in 0..pcount {
            let p = *parts.add(i);
            let leader = rd::rd_kafka_TopicPartitionInfo_leader(p);
            let mut rcount = 0usize;
            let replicas = rd::rd_kafka_TopicPartitionInfo_replicas(p, &mut rcount);
            partitions.push(NativePartition {
                id: rd::rd_kafka_TopicPartitionInfo_partition(p),
                leader: (!leader.is_null()).then(|| rd::rd_kafka_Node_id(leader)),
                replicas: (0..rcount)
                    .map(|r| rd::rd_kafka_Node_id(*replicas.add(r)))
                    .collect(),
            });
        }
        partitions.sort_by_key(|p| p.id);
        Ok(Some(NativeTopic {
            topic_id,
            partitions,
        }))
    }
}

/// Sets and deletes (resets to default) topic config keys in one incremental request.
pub(crate) fn incremental_alter_topic(
    rk: Handle,
    name: &str,
    set: &[(String, String)],
    delete: &[String],
    validate_only: bool,
    timeout: Duration,
) -> Result<(), NativeError> {
    let bad = |what: &str| {
        NativeError::new(
            RDKafkaErrorCode::InvalidConfig,
            format!("{what} contains NUL"),
        )
    };
    let cname = CString::new(name).map_err(|_| bad("topic name"))?;
    let opts = options(
        rk,
        rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_INCREMENTALALTERCONFIGS,
        timeout,
        validate_only,
    )?;
    let queue = Queue(unsafe { rd::rd_kafka_queue_new(rk.0) });
    unsafe {
        let resource = rd::rd_kafka_ConfigResource_new(
            rd::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_TOPIC,
            cname.as_ptr(),
        );
        let mut ops: Vec<(CString, rd::rd_kafka_AlterConfigOpType_t, Option<CString>)> = Vec::new();
        for (k, v) in set {
            ops.push((
                CString::new(k.as_str()).map_err(|_| bad("config key"))?,
                rd::rd_kafka_AlterConfigOpType_t::RD_KAFKA_ALTER_CONFIG_OP_TYPE_SET,
                Some(CString::new(v.as_str()).map_err(|_| bad("config value"))?),
            ));
        }
        for k in delete {
            ops.push((
                CString::new(k.as_str()).map_err(|_| bad("config key"))?,
                rd::rd_kafka_AlterConfigOpType_t::RD_KAFKA_ALTER_CONFIG_OP_TYPE_DELETE,
                None,
            ));
        }
        for (key, op, value) in &ops {
            let vptr = value.as_ref().map_or(ptr::null(), |v| v.as_ptr());
            let err = rd::rd_kafka_ConfigResource_add_incremental_config(
                resource,
                key.as_ptr(),
                *op,
                vptr,
            );
            if !err.is_null() {
                let e = NativeError::new(
                    RDKafkaErrorCode::from(rd::rd_kafka_error_code(err)),
                    c_string(rd::rd_kafka_error_string(err)),
                );
                rd::rd_kafka_error_destroy(err);
                rd::rd_kafka_ConfigResource_destroy(resource);
                return Err(e);
            }
        }
        let mut resources = [resource];
        rd::rd_kafka_IncrementalAlterConfigs(rk.0, resources.as_mut_ptr(), 1, opts.0, queue.0);
        rd::rd_kafka_ConfigResource_destroy(resource);
    }
    let ev = wait(&queue, timeout)?;
    unsafe {
        let result = rd::rd_kafka_event_IncrementalAlterConfigs_result(ev.0);
        if result.is_null() {
            return Err(NativeError::new(
                RDKafkaErrorCode::Fail,
                "unexpected admin result event",
            ));
        }
        let mut count = 0usize;
        let resources = rd::rd_kafka_IncrementalAlterConfigs_result_resources(result, &mut count);
        for i in 0..count {
            let r = *resources.add(i);
            let code = RDKafkaErrorCode::from(rd::rd_kafka_ConfigResource_error(r));
            if code != RDKafkaErrorCode::NoError {
                return Err(NativeError::new(
                    code,
                    c_string(rd::rd_kafka_ConfigResource_error_string(r)),
                ));
            }
        }
    }
    Ok(())
}

/// Outcome of a per-topic admin call (CreateTopics, CreatePartitions, DeleteTopics), keeping
/// the broker's own error message, which rust-rdkafka drops.
unsafe fn first_topic_result(
    results: *mut *const rd::rd_kafka_topic_result_t,
    count: usize,
) -> Result<(), NativeError> {
    for i in 0..count {
        let r = unsafe { *results.add(i) };
        let code = RDKafkaErrorCode::from(unsafe { rd::rd_kafka_topic_result_error(r) });
        if code != RDKafkaErrorCode::NoError {
            let message = unsafe { c_string(rd::rd_kafka_topic_result_error_string(r)) };
            return Err(NativeError::new(code, message));
        }
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
    rk: Handle,
    topic: &CreateTopic<'_>,
    validate_only: bool,
    timeout: Duration,
) -> Result<(), NativeError> {
    let bad = |what: &str| {
        NativeError::new(
            RDKafkaErrorCode::InvalidConfig,
            format!("{what} contains NUL"),
        )
    };
    let cname = CString::new(topic.name).map_err(|_| bad("topic name"))?;
    let opts = options(
        rk,
        rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_CREATETOPICS,
        timeout,
        validate_only,
    )?;
    let queue = Queue(unsafe { rd::rd_kafka_queue_new(rk.0) });
    let mut errstr = [0 as c_char; 512];
    unsafe {
        let nt = rd::rd_kafka_NewTopic_new(
            cname.as_ptr(),
            topic.partitions,
            topic.replication_factor,
            errstr.as_mut_ptr(),
            errstr.len(),
        );
        if nt.is_null() {
            return Err(NativeError::new(
                RDKafkaErrorCode::InvalidRequest,
                c_string(errstr.as_ptr()),
            ));
        }
        for (k, v) in topic.config {
            let (ck, cv) = match (CString::new(k.as_str()), CString::new(v.as_str())) {
                (Ok(ck), Ok(cv)) => (ck, cv),
                _ => {
                    rd::rd_kafka_NewTopic_destroy(nt);
                    return Err(bad("config entry"));
                }
            };
            rd::rd_kafka_NewTopic_set_config(nt, ck.as_ptr(), cv.as_ptr());
        }
        let mut topics = [nt];
        rd::rd_kafka_CreateTopics(rk.0, topics.as_mut_ptr(), 1, opts.0, queue.0);
        rd::rd_kafka_NewTopic_destroy(nt);
    }
    let ev = wait(&queue, timeout)?;
    unsafe {
        let result = rd::rd_kafka_event_CreateTopics_result(ev.0);
        let mut count = 0usize;
        let results = rd::rd_kafka_CreateTopics_result_topics(result, &mut count);
        first_topic_result(results, count)
    }
}

pub(crate) fn create_partitions(
    rk: Handle,
    name: &str,
    new_total: i32,
    validate_only: bool,
    timeout: Duration,
) -> Result<(), NativeError> {
    let cname = CString::new(name)
        .map_err(|_| NativeError::new(RDKafkaErrorCode::InvalidTopic, "topic name contains NUL"))?;
    let opts = options(
        rk,
        rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_CREATEPARTITIONS,
        timeout,
        validate_only,
    )?;
    let queue = Queue(unsafe { rd::rd_kafka_queue_new(rk.0) });
    let mut errstr = [0 as c_char; 512];
    unsafe {
        let np = rd::rd_kafka_NewPartitions_new(
            cname.as_ptr(),
            new_total as usize,
            errstr.as_mut_ptr(),
            errstr.len(),
        );
        if np.is_null() {
            return Err(NativeError::new(
                RDKafkaErrorCode::InvalidPartitions,
                c_string(errstr.as_ptr()),
            ));
        }
        let mut parts = [np];
        rd::rd_kafka_CreatePartitions(rk.0, parts.as_mut_ptr(), 1, opts.0, queue.0);
        rd::rd_kafka_NewPartitions_destroy(np);
    }
    let ev = wait(&queue, timeout)?;
    unsafe {
        let result = rd::rd_kafka_event_CreatePartitions_result(ev.0);
        let mut count = 0usize;
        let results = rd::rd_kafka_CreatePartitions_result_topics(result, &mut count);
        first_topic_result(results, count)
    }
}

pub(crate) fn delete_topic(rk: Handle, name: &str, timeout: Duration) -> Result<(), NativeError> {
    let cname = CString::new(name)
        .map_err(|_| NativeError::new(RDKafkaErrorCode::InvalidTopic, "topic name contains NUL"))?;
    let opts = options(
        rk,
        rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DELETETOPICS,
        timeout,
        false,
    )?;
    let queue = Queue(unsafe { rd::rd_kafka_queue_new(rk.0) });
    unsafe {
        let dt = rd::rd_kafka_DeleteTopic_new(cname.as_ptr());
        let mut topics = [dt];
        rd::rd_kafka_DeleteTopics(rk.0, topics.as_mut_ptr(), 1, opts.0, queue.0);
        rd::rd_kafka_DeleteTopic_destroy(dt);
    }
    let ev = wait(&queue, timeout)?;
    unsafe {
        let result = rd::rd_kafka_event_DeleteTopics_result(ev.0);
        let mut count = 0usize;
        let results = rd::rd_kafka_DeleteTopics_result_topics(result, &mut count);
        first_topic_result(results, count)
    }
}

/// Drains the client's main event queue (logs and errors, which rust-rdkafka's admin client
/// never polls) and returns the last connection-level error it held, e.g. a SASL failure.
pub(crate) fn drain_connection_errors(rk: Handle) -> Option<String> {
    let mut last = None;
    unsafe {
        let queue = Queue(rd::rd_kafka_queue_get_main(rk.0));
        loop {
            let ev = rd::rd_kafka_queue_poll(queue.0, 0);
            if ev.is_null() {
                break;
            }
            let ev = Event(ev);
            match rd::rd_kafka_event_type(ev.0) {
                rd::RD_KAFKA_EVENT_LOG => {
                    let (mut fac, mut text, mut level) = (ptr::null(), ptr::null(), 0);
                    if rd::rd_kafka_event_log(ev.0, &mut fac, &mut text, &mut level) == 0
                        && level <= 3
                    {
                        last = Some(c_string(text));
                    }
                }
                rd::RD_KAFKA_EVENT_ERROR => {
                    last = Some(c_string(rd::rd_kafka_event_error_string(ev.0)));
                }
                _ => {}
            }
        }
    }
    last
}
