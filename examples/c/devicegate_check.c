/*
 * A C host using libdevicegate: creates an engine on a database, logs a
 * device in, and checks a publish and a subscription the way a broker's
 * hooks would, then takes the device offline and frees the engine.
 *
 * Build (from the repository root, after `cargo build -p devicegate-ffi`):
 *   cc -Wall -Wextra -Iinclude examples/c/devicegate_check.c \
 *      -Ltarget/debug -ldevicegate -Wl,-rpath,"$PWD/target/debug" -o devicegate_check
 * Run, with credentials from `devicegate sign PK DK SECRET`:
 *   ./devicegate_check sqlite://devicegate.db CLIENT_ID USERNAME PASSWORD
 *
 * Prints one line per step; exits 0 when the login was accepted, the own
 * topic allowed and the foreign topic and `#` refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "devicegate.h"

/* A borrowed dg_str over a C string (NULL stays absent). */
static dg_str str(const char *text) {
    dg_str s = {(const uint8_t *)text, text ? strlen(text) : 0};
    return s;
}

/* Prints the calling thread's last error after a failed call. */
static void print_last_error(const char *step, dg_result rc) {
    uint8_t text[512];
    dg_out_buf message = {text, sizeof text, 0};
    if (dg_last_error(&message) != DG_OK) {
        message.len = 0;
    }
    printf("%s: %d (%.*s)\n", step, (int)rc, (int)message.len, (const char *)text);
}

static void sleep_ms(long ms) {
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s DATABASE_URL CLIENT_ID USERNAME PASSWORD\n", argv[0]);
        return 2;
    }
    const char *client_id = argv[2], *username = argv[3], *password = argv[4];
    /* The username is `{deviceKey}&{productKey}`. */
    const char *amp = strchr(username, '&');
    if (!amp) {
        fprintf(stderr, "the username must be DEVICEKEY&PRODUCTKEY\n");
        return 2;
    }
    char dk[128], pk[128];
    snprintf(dk, sizeof dk, "%.*s", (int)(amp - username), username);
    snprintf(pk, sizeof pk, "%s", amp + 1);

    char config[1024];
    snprintf(config, sizeof config, "{\"database_url\":\"%s\",\"log_level\":\"warn\"}", argv[1]);
    dg_engine *engine = dg_engine_new(str(config));
    if (!engine) {
        print_last_error("engine", DG_ERR_BAD_ARGUMENT);
        return 1;
    }
    printf("abi version: %u\n", dg_abi_version());

    /* Logins answer DG_ERR_UNAVAILABLE until the registry is loaded. */
    uint8_t canonical[DG_CLIENT_ID_MAX];
    dg_out_buf session_id = {canonical, sizeof canonical, 0};
    dg_result rc = DG_ERR_UNAVAILABLE;
    for (int tries = 0; tries < 200 && rc == DG_ERR_UNAVAILABLE; tries++) {
        if (tries > 0) sleep_ms(50);
        rc = dg_auth_on_register(engine, str("127.0.0.1"), 50000, str(""), str(client_id), str(username),
                                 str(password), true, &session_id);
    }
    if (rc != DG_OK) {
        print_last_error("login", rc);
        dg_engine_free(engine);
        return 1;
    }
    printf("login: accepted as %.*s\n", (int)session_id.len, (const char *)canonical);
    dg_str session = {canonical, session_id.len};
    dg_on_register(engine, str("127.0.0.1"), 50000, str(""), session, str(username));

    char own[512], foreign[512], filter[512];
    snprintf(own, sizeof own, "/sys/%s/%s/thing/measurepoint/post", pk, dk);
    snprintf(foreign, sizeof foreign, "/sys/%s/not-%s/thing/measurepoint/post", pk, dk);
    snprintf(filter, sizeof filter, "/sys/%s/%s/thing/service/+", pk, dk);
    const char *payload = "{\"id\":\"1\",\"params\":{\"measurepoints\":{\"temp\":21.5}}}";

    int failures = 0;
    rc = dg_auth_on_publish(engine, str(username), str(""), session, 1, str(own), str(payload), false);
    printf("publish %s: %s\n", own, rc == DG_OK ? "allowed" : "refused");
    failures += rc != DG_OK;
    rc = dg_auth_on_publish(engine, str(username), str(""), session, 1, str(foreign), str(payload), false);
    if (rc == DG_OK) {
        printf("publish %s: allowed\n", foreign);
        failures++;
    } else {
        print_last_error("publish to a foreign topic refused", rc);
    }

    dg_topic_qos topics[2] = {{str(filter), 1}, {str("#"), 0}};
    uint8_t granted[2] = {0, 0};
    rc = dg_auth_on_subscribe(engine, str(username), str(""), session, topics, 2, granted);
    printf("subscribe %s: %s\n", filter, granted[0] == 1 ? "granted qos 1" : "refused");
    printf("subscribe #: %s\n", granted[1] == DG_SUBACK_FAILURE ? "refused" : "granted");
    failures += rc != DG_OK || granted[0] != 1 || granted[1] != DG_SUBACK_FAILURE;

    /* A broker drains effects on its own loop; a static login makes none. */
    uint8_t mp[64], id[DG_CLIENT_ID_MAX], topic[512], body[4096];
    dg_effect effect = {0, 0, {mp, sizeof mp, 0}, {id, sizeof id, 0}, {topic, sizeof topic, 0}, {body, sizeof body, 0}};
    while ((rc = dg_poll_effect(engine, &effect)) == DG_OK) {
        printf("effect %d for %.*s\n", (int)effect.kind, (int)effect.client_id.len, (const char *)id);
    }
    if (rc != DG_NEXT) print_last_error("effects", rc);

    rc = dg_on_client_gone(engine, str(""), session);
    printf("offline: %s\n", rc == DG_OK ? "ok" : "unknown session");
    failures += rc != DG_OK;

    /* Bad input is refused with a code and a message, never a crash. */
    rc = dg_auth_on_publish(engine, str(username), str(""), session, 0, str(NULL), str(""), false);
    print_last_error("a NULL topic", rc);
    failures += rc != DG_ERR_BAD_ARGUMENT;

    dg_engine_free(engine);
    rc = dg_auth_on_publish(engine, str(username), str(""), session, 0, str(own), str(""), false);
    print_last_error("a call after free", rc);
    failures += rc != DG_ERR_BAD_ARGUMENT;

    printf("%s\n", failures == 0 ? "all checks passed" : "some checks failed");
    return failures == 0 ? 0 : 1;
}
