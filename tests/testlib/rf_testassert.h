/*
 * rf_testassert.h - cmocka assertions for black-box HTTP tests that say what
 * the server actually answered. Include after <cmocka.h>.
 */
#ifndef RF_TESTASSERT_H
#define RF_TESTASSERT_H

#include "testlib/rf_testlib.h"
#include "testlib/rf_testjson.h"

/* The response must have this status; on failure prints the body. */
#define RF_ASSERT_STATUS(resp, expected)                                                      \
    do {                                                                                      \
        const struct rf_t_resp *r_ = (resp);                                                  \
        if (r_->status != (expected))                                                         \
            fail_msg("expected HTTP %d, got %d%s%s: %.1000s", (int)(expected), r_->status,   \
                     r_->err ? " / client error: " : "", r_->err ? r_->errmsg : "",           \
                     r_->body ? r_->body : "");                                               \
    } while (0)

/* The response must be application/problem+json with this status and code. */
#define RF_ASSERT_PROBLEM(resp, expected_status, expected_code)                               \
    do {                                                                                      \
        const struct rf_t_resp *rp_ = (resp);                                                 \
        RF_ASSERT_STATUS(rp_, expected_status);                                               \
        char why_[256];                                                                       \
        if (rf_check_problem(rp_, (expected_code), why_, sizeof why_) != 0)                  \
            fail_msg("HTTP %d: %s; body: %.1000s", rp_->status, why_, rp_->body);            \
    } while (0)

/* The response is 4xx problem+json with some code (code copied into buf). */
#define RF_ASSERT_4XX_PROBLEM(resp)                                                           \
    do {                                                                                      \
        const struct rf_t_resp *rq_ = (resp);                                                 \
        if (rq_->status < 400 || rq_->status > 499)                                           \
            fail_msg("expected a 4xx, got %d: %.1000s", rq_->status,                          \
                     rq_->body ? rq_->body : rq_->errmsg);                                    \
        char why_[256];                                                                       \
        if (rf_check_problem(rq_, NULL, why_, sizeof why_) != 0)                             \
            fail_msg("HTTP %d: %s; body: %.1000s", rq_->status, why_, rq_->body);            \
    } while (0)

/* A call into testlib that returns 0 on success. */
#define RF_CHECK(call)                                                                        \
    do {                                                                                      \
        if ((call) != 0)                                                                      \
            fail_msg("%s failed", #call);                                                     \
    } while (0)

#endif
