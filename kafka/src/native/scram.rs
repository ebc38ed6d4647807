//! SCRAM credential admin calls (DescribeUserScramCredentials, AlterUserScramCredentials), in
//! the idiom of the parent module. Passwords are handed to librdkafka, which salts and hashes
//! them (a random salt) before anything is sent; they are never copied anywhere else.

use std::ffi::c_char;
use std::time::Duration;

use rdkafka::bindings as rd;
use rdkafka::error::RDKafkaErrorCode;

use super::{
    AdminOp, Handle, Native, NativeDrop, NativeError, RequestFlags, admin_request, borrowed_error,
    c_str, c_string, items, result_of,
};

native_drop! {
    rd::rd_kafka_UserScramCredentialAlteration_t => rd::rd_kafka_UserScramCredentialAlteration_destroy,
}

impl AdminOp {
    const DESCRIBE_SCRAM: AdminOp = AdminOp {
        op: rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBEUSERSCRAMCREDENTIALS,
        result: rd::RD_KAFKA_EVENT_DESCRIBEUSERSCRAMCREDENTIALS_RESULT,
        name: "DescribeUserScramCredentials",
    };
    const ALTER_SCRAM: AdminOp = AdminOp {
        op: rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_ALTERUSERSCRAMCREDENTIALS,
        result: rd::RD_KAFKA_EVENT_ALTERUSERSCRAMCREDENTIALS_RESULT,
        name: "AlterUserScramCredentials",
    };
}

pub(crate) type Mechanism = rd::rd_kafka_ScramMechanism_t;

/// One change to a user's credentials.
pub(crate) enum Alteration<'a> {
    Upsert {
        user: &'a str,
        mechanism: Mechanism,
        iterations: i32,
        password: &'a str,
    },
    Delete {
        user: &'a str,
        mechanism: Mechanism,
    },
}

fn build(
    a: &Alteration<'_>,
) -> Result<Native<rd::rd_kafka_UserScramCredentialAlteration_t>, NativeError> {
    let made = match a {
        Alteration::Upsert {
            user,
            mechanism,
            iterations,
            password,
        } => {
            let cuser = c_str(user, "user name")?;
            // SAFETY: `cuser` and `password` live for the call and librdkafka copies them; a
            // null salt of size 0 makes librdkafka generate a random one.
            unsafe {
                Native::own(rd::rd_kafka_UserScramCredentialUpsertion_new(
                    cuser.as_ptr(),
                    *mechanism,
                    *iterations,
                    password.as_ptr(),
                    password.len(),
                    std::ptr::null(),
                    0,
                ))
            }
        }
        Alteration::Delete { user, mechanism } => {
            let cuser = c_str(user, "user name")?;
            // SAFETY: `cuser` lives for the call; librdkafka copies it.
            unsafe {
                Native::own(rd::rd_kafka_UserScramCredentialDeletion_new(
                    cuser.as_ptr(),
                    *mechanism,
                ))
            }
        }
    };
    made.ok_or_else(|| {
        NativeError::new(
            RDKafkaErrorCode::InvalidArgument,
            "building a SCRAM credential change failed",
        )
    })
}

/// Applies the alterations in one request; the first refused one's error wins.
pub(crate) fn alter(
    rk: Handle<'_>,
    alterations: &[Alteration<'_>],
    timeout: Duration,
) -> Result<(), NativeError> {
    let owned = alterations
        .iter()
        .map(build)
        .collect::<Result<Vec<_>, _>>()?;
    let op = AdminOp::ALTER_SCRAM;
    let event = admin_request(
        rk,
        op,
        RequestFlags::default(),
        timeout,
        |options, queue| {
            let mut ptrs: Vec<*mut rd::rd_kafka_UserScramCredentialAlteration_t> =
                owned.iter().map(|a| a.as_ptr()).collect();
            // SAFETY: all objects are live; librdkafka copies the alterations.
            unsafe {
                rd::rd_kafka_AlterUserScramCredentials(
                    rk.as_ptr(),
                    ptrs.as_mut_ptr(),
                    ptrs.len(),
                    options.as_ptr(),
                    queue.as_ptr(),
                )
            }
        },
    )?;
    let result = result_of(
        &event,
        op,
        rd::rd_kafka_event_AlterUserScramCredentials_result,
    )?;
    let mut count = 0usize;
    // SAFETY: `result` and its array belong to the live `event`.
    let responses = unsafe {
        items(
            rd::rd_kafka_AlterUserScramCredentials_result_responses(result, &mut count)
                as *const *const _,
            count,
            op.name,
        )?
    };
    for r in responses {
        // SAFETY: `r` is a non-null response of the live event; its error is borrowed.
        unsafe { borrowed_error(rd::rd_kafka_AlterUserScramCredentials_result_response_error(r))? };
    }
    Ok(())
}

/// A user's credentials: (mechanism, iterations) for each mechanism it has; empty when the
/// user has none.
pub(crate) fn describe(
    rk: Handle<'_>,
    user: &str,
    timeout: Duration,
) -> Result<Vec<(Mechanism, i32)>, NativeError> {
    let cuser = c_str(user, "user name")?;
    let op = AdminOp::DESCRIBE_SCRAM;
    let event = admin_request(
        rk,
        op,
        RequestFlags::default(),
        timeout,
        |options, queue| {
            let mut users: [*const c_char; 1] = [cuser.as_ptr()];
            // SAFETY: all objects are live; librdkafka copies the user names.
            unsafe {
                rd::rd_kafka_DescribeUserScramCredentials(
                    rk.as_ptr(),
                    users.as_mut_ptr(),
                    users.len(),
                    options.as_ptr(),
                    queue.as_ptr(),
                )
            }
        },
    )?;
    let result = result_of(
        &event,
        op,
        rd::rd_kafka_event_DescribeUserScramCredentials_result,
    )?;
    let mut count = 0usize;
    // SAFETY: `result` and its array belong to the live `event`.
    let descriptions = unsafe {
        items(
            rd::rd_kafka_DescribeUserScramCredentials_result_descriptions(result, &mut count)
                as *const *const _,
            count,
            op.name,
        )?
    };
    let mut out = Vec::new();
    for d in descriptions {
        // SAFETY: `d` is a non-null description of the live event, and so are its error, name
        // and credential infos (checked for null).
        unsafe {
            if c_string(rd::rd_kafka_UserScramCredentialsDescription_user(d)) != user {
                continue;
            }
            match borrowed_error(rd::rd_kafka_UserScramCredentialsDescription_error(d)) {
                Err(e) if e.code == RDKafkaErrorCode::ResourceNotFound => continue,
                other => other?,
            }
            let n = rd::rd_kafka_UserScramCredentialsDescription_scramcredentialinfo_count(d);
            for i in 0..n {
                let info = rd::rd_kafka_UserScramCredentialsDescription_scramcredentialinfo(d, i);
                if info.is_null() {
                    return Err(NativeError::new(
                        RDKafkaErrorCode::Fail,
                        format!("{}: credential {i} is null", op.name),
                    ));
                }
                out.push((
                    rd::rd_kafka_ScramCredentialInfo_mechanism(info),
                    rd::rd_kafka_ScramCredentialInfo_iterations(info),
                ));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alterations_are_built_and_freed_by_their_owner() {
        let sha512 = rd::rd_kafka_ScramMechanism_t::RD_KAFKA_SCRAM_MECHANISM_SHA_512;
        build(&Alteration::Upsert {
            user: "alice",
            mechanism: sha512,
            iterations: 4096,
            password: "secret",
        })
        .unwrap();
        build(&Alteration::Delete {
            user: "alice",
            mechanism: sha512,
        })
        .unwrap();
        assert!(
            build(&Alteration::Delete {
                user: "a\0b",
                mechanism: sha512
            })
            .is_err()
        );
    }
}
