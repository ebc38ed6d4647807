/*
 * ferry: one Kafka request that librdkafka has no admin API for (AlterPartitionReassignments,
 * ListPartitionReassignments and DescribeLogDirs in librdkafka 2.12), sent over librdkafka's
 * own broker connection, to the controller or to one broker by node id: its TLS, SASL, ApiVersion negotiation and broker threads. The caller encodes the
 * request body and decodes the response body (kafka/src/protocol.rs); this file only frames,
 * sends and waits. It is compiled against the bundled librdkafka's internal headers and the
 * config.h its configure wrote, so struct layouts match the library it is linked with
 * (build.rs; docs/design/kafka-client.md, "What librdkafka lacks").
 */
#include "rdkafka_int.h"
#include "rdkafka_broker.h"
#include "rdkafka_buf.h"
#include "rdkafka_queue.h"
#include "rdkafka_op.h"

/* What the response callback hands back to the waiting call. */
struct ferry_reply {
        int done;
        rd_kafka_resp_err_t err;
        char *body;
        size_t len;
};

/*
 * Runs on the calling thread, from rd_kafka_q_serve() in ferry_raw_request, with the reply.
 * It also runs with RD_KAFKA_RESP_ERR__DESTROY when a reply is dropped: after the caller gave
 * up (its queue is disabled, so the op is destroyed) or when the client is destroyed. Then
 * `opaque` may be gone, and is not touched.
 */
static void ferry_reply_cb(rd_kafka_t *rk,
                           rd_kafka_broker_t *rkb,
                           rd_kafka_resp_err_t err,
                           rd_kafka_buf_t *response,
                           rd_kafka_buf_t *request,
                           void *opaque) {
        struct ferry_reply *reply = opaque;
        size_t len;

        if (err == RD_KAFKA_RESP_ERR__DESTROY)
                return;
        reply->done = 1;
        if (!err && !response)
                err = RD_KAFKA_RESP_ERR__BAD_MSG;
        if (!err) {
                len         = rd_slice_remains(&response->rkbuf_reader);
                reply->body = rd_malloc(len ? len : 1);
                if (rd_slice_read(&response->rkbuf_reader, reply->body, len) !=
                    len) {
                        rd_free(reply->body);
                        reply->body = NULL;
                        err         = RD_KAFKA_RESP_ERR__BAD_MSG;
                } else {
                        reply->len = len;
                }
        }
        reply->err = err;
}

/*
 * Broker `node_id` in state UP, waiting (and asking librdkafka to connect, for sparse
 * connections) until abs_timeout; with a reference the caller releases. NULL on timeout.
 */
static rd_kafka_broker_t *ferry_broker_up(rd_kafka_t *rk,
                                          int32_t node_id,
                                          rd_ts_t abs_timeout) {
        while (1) {
                int version = rd_kafka_brokers_get_state_version(rk);
                rd_kafka_broker_t *rkb;
                int remains_ms;

                rd_kafka_rdlock(rk);
                rkb = rd_kafka_broker_find_by_nodeid0(
                    rk, node_id, RD_KAFKA_BROKER_STATE_UP, rd_true);
                rd_kafka_rdunlock(rk);
                if (rkb)
                        return rkb;

                remains_ms = rd_timeout_remains(abs_timeout);
                if (rd_timeout_expired(remains_ms))
                        return NULL;
                rd_kafka_brokers_wait_state_change(rk, version, remains_ms);
        }
}

/*
 * Sends `body` (without the request's trailing tagged-fields byte, which librdkafka adds to
 * flexible-version requests) as api_key/api_version to broker `node_id` (-1: the
 * controller), waits at most timeout_ms, and on success hands back the response body (after
 * the response header) in *resp, malloc'ed, to be freed with ferry_raw_free. Returns an
 * rd_kafka_resp_err_t; errstr says why on failure.
 */
int ferry_raw_request(rd_kafka_t *rk,
                      int32_t node_id,
                      int16_t api_key,
                      int16_t api_version,
                      int flexver,
                      const char *body,
                      size_t body_len,
                      int timeout_ms,
                      char **resp,
                      size_t *resp_len,
                      char *errstr,
                      size_t errstr_size) {
        rd_ts_t abs_timeout = rd_timeout_init(timeout_ms);
        /* librdkafka times the request out itself; this only bounds a reply that never comes. */
        rd_ts_t abs_wait = abs_timeout + 2000000;
        struct ferry_reply reply = {0, RD_KAFKA_RESP_ERR_NO_ERROR, NULL, 0};
        rd_kafka_broker_t *rkb;
        rd_kafka_buf_t *rkbuf;
        rd_kafka_q_t *rkq;

        *resp     = NULL;
        *resp_len = 0;

        if (node_id < 0)
                rkb = rd_kafka_broker_controller(rk, RD_KAFKA_BROKER_STATE_UP,
                                                 abs_timeout);
        else
                rkb = ferry_broker_up(rk, node_id, abs_timeout);
        if (!rkb) {
                if (node_id < 0)
                        rd_snprintf(errstr, errstr_size,
                                    "no controller broker reachable within %dms",
                                    timeout_ms);
                else
                        rd_snprintf(errstr, errstr_size,
                                    "broker %d not reachable within %dms",
                                    (int)node_id, timeout_ms);
                return RD_KAFKA_RESP_ERR__TIMED_OUT;
        }
        if (rd_kafka_broker_ApiVersion_supported(rkb, api_key, api_version,
                                                 api_version, NULL) == -1) {
                rd_snprintf(errstr, errstr_size,
                            "the broker does not support request %d version %d",
                            (int)api_key, (int)api_version);
                rd_kafka_broker_destroy(rkb);
                return RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE;
        }

        rkbuf = rd_kafka_buf_new_flexver_request(rkb, api_key, 1, body_len,
                                                 flexver ? rd_true : rd_false);
        rd_kafka_buf_write(rkbuf, body, body_len);
        rd_kafka_buf_set_abs_timeout(rkbuf, timeout_ms, 0);
        rd_kafka_buf_ApiVersion_set(rkbuf, api_version, 0);

        /* A private reply queue, served on this thread: the callback runs here. The request
         * holds its own reference to the queue; a reply after we gave up finds it disabled
         * and is dropped (the callback then sees __DESTROY and leaves `reply` alone). */
        rkq = rd_kafka_q_new(rk);
        rd_kafka_broker_buf_enq_replyq(rkb, rkbuf, RD_KAFKA_REPLYQ(rkq, 0),
                                       ferry_reply_cb, &reply);
        rd_kafka_broker_destroy(rkb);

        while (!reply.done) {
                int remains_ms = rd_timeout_remains(abs_wait);
                if (rd_timeout_expired(remains_ms))
                        break;
                rd_kafka_q_serve(rkq, remains_ms, 1, RD_KAFKA_Q_CB_CALLBACK,
                                 NULL, NULL);
        }
        rd_kafka_q_destroy_owner(rkq);

        if (!reply.done) {
                rd_snprintf(errstr, errstr_size, "no answer within %dms",
                            timeout_ms);
                return RD_KAFKA_RESP_ERR__TIMED_OUT;
        }
        if (reply.err) {
                rd_snprintf(errstr, errstr_size, "%s",
                            rd_kafka_err2str(reply.err));
                return reply.err;
        }
        *resp     = reply.body;
        *resp_len = reply.len;
        return RD_KAFKA_RESP_ERR_NO_ERROR;
}

void ferry_raw_free(char *p) {
        rd_free(p);
}
