//! ACL admin calls (CreateAcls, DescribeAcls, DeleteAcls), in the idiom of the parent module:
//! every binding we build is a [`Native`], every request goes through [`admin_request`], and
//! per-item errors keep the broker's text.

use std::ffi::c_char;
use std::ptr;
use std::time::Duration;

use rdkafka::bindings as rd;
use rdkafka::error::RDKafkaErrorCode;

use super::{
    AdminOp, ErrBuf, Handle, Native, NativeDrop, NativeError, RequestFlags, admin_request,
    borrowed_error, c_str, c_string, items, result_of,
};

native_drop! {
    rd::rd_kafka_AclBinding_t => rd::rd_kafka_AclBinding_destroy,
}

impl AdminOp {
    const CREATE_ACLS: AdminOp = AdminOp {
        op: rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_CREATEACLS,
        result: rd::RD_KAFKA_EVENT_CREATEACLS_RESULT,
        name: "CreateAcls",
    };
    const DESCRIBE_ACLS: AdminOp = AdminOp {
        op: rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBEACLS,
        result: rd::RD_KAFKA_EVENT_DESCRIBEACLS_RESULT,
        name: "DescribeAcls",
    };
    const DELETE_ACLS: AdminOp = AdminOp {
        op: rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DELETEACLS,
        result: rd::RD_KAFKA_EVENT_DELETEACLS_RESULT,
        name: "DeleteAcls",
    };
}

/// One ACL binding (or, with `None`s and the ANY/MATCH values, a filter) in librdkafka's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NativeAcl {
    pub resource_type: rd::rd_kafka_ResourceType_t,
    pub resource_name: Option<String>,
    pub pattern_type: rd::rd_kafka_ResourcePatternType_t,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: rd::rd_kafka_AclOperation_t,
    pub permission: rd::rd_kafka_AclPermissionType_t,
}

/// Builds a binding (`filter == false`: every field must be set) or a filter.
fn build(acl: &NativeAcl, filter: bool) -> Result<Native<rd::rd_kafka_AclBinding_t>, NativeError> {
    let opt = |v: &Option<String>, what: &str| v.as_deref().map(|s| c_str(s, what)).transpose();
    let name = opt(&acl.resource_name, "resource name")?;
    let principal = opt(&acl.principal, "principal")?;
    let host = opt(&acl.host, "host")?;
    let p = |c: &Option<std::ffi::CString>| c.as_ref().map_or(ptr::null(), |c| c.as_ptr());
    let mut errstr = ErrBuf::new();
    let make = if filter {
        rd::rd_kafka_AclBindingFilter_new
    } else {
        rd::rd_kafka_AclBinding_new
    };
    // SAFETY: the strings are valid C strings (or null, allowed for filters) that live for the
    // call; librdkafka copies them. `errstr` is writable for the length we pass. The new
    // object is ours.
    let made = unsafe {
        Native::own(make(
            acl.resource_type,
            p(&name),
            acl.pattern_type,
            p(&principal),
            p(&host),
            acl.operation,
            acl.permission,
            errstr.ptr(),
            errstr.len(),
        ))
    };
    made.ok_or_else(|| NativeError::new(RDKafkaErrorCode::InvalidArgument, errstr.text()))
}

/// Reads a binding that lives inside a result event.
///
/// # Safety
/// `b` is a non-null binding inside a live event.
unsafe fn read_binding(b: *const rd::rd_kafka_AclBinding_t) -> NativeAcl {
    let s = |p: *const c_char| {
        // SAFETY: null or a string owned by the live binding.
        Some(unsafe { c_string(p) })
    };
    // SAFETY: `b` is live (caller).
    unsafe {
        NativeAcl {
            resource_type: rd::rd_kafka_AclBinding_restype(b),
            resource_name: s(rd::rd_kafka_AclBinding_name(b)),
            pattern_type: rd::rd_kafka_AclBinding_resource_pattern_type(b),
            principal: s(rd::rd_kafka_AclBinding_principal(b)),
            host: s(rd::rd_kafka_AclBinding_host(b)),
            operation: rd::rd_kafka_AclBinding_operation(b),
            permission: rd::rd_kafka_AclBinding_permission_type(b),
        }
    }
}

/// Creates the bindings in one request; the first refused binding's error wins.
pub(crate) fn create_acls(
    rk: Handle<'_>,
    acls: &[NativeAcl],
    timeout: Duration,
) -> Result<(), NativeError> {
    let owned = acls
        .iter()
        .map(|a| build(a, false))
        .collect::<Result<Vec<_>, _>>()?;
    let op = AdminOp::CREATE_ACLS;
    let event = admin_request(
        rk,
        op,
        RequestFlags::default(),
        timeout,
        |options, queue| {
            let mut ptrs: Vec<*mut rd::rd_kafka_AclBinding_t> =
                owned.iter().map(|b| b.as_ptr()).collect();
            // SAFETY: all objects are live; librdkafka copies the bindings.
            unsafe {
                rd::rd_kafka_CreateAcls(
                    rk.as_ptr(),
                    ptrs.as_mut_ptr(),
                    ptrs.len(),
                    options.as_ptr(),
                    queue.as_ptr(),
                )
            }
        },
    )?;
    let result = result_of(&event, op, rd::rd_kafka_event_CreateAcls_result)?;
    let mut count = 0usize;
    // SAFETY: `result` and its array belong to the live `event`.
    let results = unsafe {
        items(
            rd::rd_kafka_CreateAcls_result_acls(result, &mut count),
            count,
            op.name,
        )?
    };
    for r in results {
        // SAFETY: `r` is a non-null result of the live event; its error is borrowed.
        unsafe { borrowed_error(rd::rd_kafka_acl_result_error(r))? };
    }
    Ok(())
}

/// The bindings matching a filter.
pub(crate) fn describe_acls(
    rk: Handle<'_>,
    filter: &NativeAcl,
    timeout: Duration,
) -> Result<Vec<NativeAcl>, NativeError> {
    let filter = build(filter, true)?;
    let op = AdminOp::DESCRIBE_ACLS;
    let event = admin_request(
        rk,
        op,
        RequestFlags::default(),
        timeout,
        |options, queue| {
            // SAFETY: all objects are live; librdkafka copies the filter.
            unsafe {
                rd::rd_kafka_DescribeAcls(
                    rk.as_ptr(),
                    filter.as_ptr(),
                    options.as_ptr(),
                    queue.as_ptr(),
                )
            }
        },
    )?;
    let result = result_of(&event, op, rd::rd_kafka_event_DescribeAcls_result)?;
    let mut count = 0usize;
    // SAFETY: `result` and its array belong to the live `event`.
    let found = unsafe {
        items(
            rd::rd_kafka_DescribeAcls_result_acls(result, &mut count),
            count,
            op.name,
        )?
    };
    // SAFETY: each element is a non-null binding of the live event.
    Ok(found
        .into_iter()
        .map(|b| unsafe { read_binding(b) })
        .collect())
}

/// Deletes every binding matching each filter; returns the bindings deleted.
pub(crate) fn delete_acls(
    rk: Handle<'_>,
    filters: &[NativeAcl],
    timeout: Duration,
) -> Result<Vec<NativeAcl>, NativeError> {
    let owned = filters
        .iter()
        .map(|f| build(f, true))
        .collect::<Result<Vec<_>, _>>()?;
    let op = AdminOp::DELETE_ACLS;
    let event = admin_request(
        rk,
        op,
        RequestFlags::default(),
        timeout,
        |options, queue| {
            let mut ptrs: Vec<*mut rd::rd_kafka_AclBinding_t> =
                owned.iter().map(|b| b.as_ptr()).collect();
            // SAFETY: all objects are live; librdkafka copies the filters.
            unsafe {
                rd::rd_kafka_DeleteAcls(
                    rk.as_ptr(),
                    ptrs.as_mut_ptr(),
                    ptrs.len(),
                    options.as_ptr(),
                    queue.as_ptr(),
                )
            }
        },
    )?;
    let result = result_of(&event, op, rd::rd_kafka_event_DeleteAcls_result)?;
    let mut count = 0usize;
    // SAFETY: `result` and its array belong to the live `event`.
    let responses = unsafe {
        items(
            rd::rd_kafka_DeleteAcls_result_responses(result, &mut count),
            count,
            op.name,
        )?
    };
    let mut deleted = Vec::new();
    for r in responses {
        // SAFETY: `r` is a non-null response of the live event; its error and bindings too.
        unsafe {
            borrowed_error(rd::rd_kafka_DeleteAcls_result_response_error(r))?;
            let mut n = 0usize;
            let matched = items(
                rd::rd_kafka_DeleteAcls_result_response_matching_acls(r, &mut n),
                n,
                op.name,
            )?;
            deleted.extend(matched.into_iter().map(|b| read_binding(b)));
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl() -> NativeAcl {
        NativeAcl {
            resource_type: rd::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_TOPIC,
            resource_name: Some("orders".into()),
            pattern_type: rd::rd_kafka_ResourcePatternType_t::RD_KAFKA_RESOURCE_PATTERN_LITERAL,
            principal: Some("User:alice".into()),
            host: Some("*".into()),
            operation: rd::rd_kafka_AclOperation_t::RD_KAFKA_ACL_OPERATION_READ,
            permission: rd::rd_kafka_AclPermissionType_t::RD_KAFKA_ACL_PERMISSION_TYPE_ALLOW,
        }
    }

    #[test]
    fn a_binding_round_trips_through_librdkafka() {
        let b = build(&acl(), false).unwrap();
        // SAFETY: `b` is live and owned here.
        assert_eq!(unsafe { read_binding(b.as_ptr()) }, acl());
    }

    #[test]
    fn a_binding_without_a_principal_is_refused_with_librdkafkas_words() {
        let mut a = acl();
        a.principal = None;
        let e = build(&a, false).err().unwrap();
        assert_eq!(e.code, RDKafkaErrorCode::InvalidArgument);
        assert!(!e.message.is_empty());
        // A filter may leave it out.
        build(&a, true).unwrap();
    }

    #[test]
    fn an_any_operation_is_refused_for_a_binding() {
        let mut a = acl();
        a.operation = rd::rd_kafka_AclOperation_t::RD_KAFKA_ACL_OPERATION_ANY;
        assert!(build(&a, false).is_err());
    }
}
