"""A device as paho-mqtt (2.x) connects one: over TLS, with a client
certificate or a pre-shared key, and no username. Publishes one message
with QoS 1 and exits 0 when the broker accepted the login and the publish,
1 when it refused the login, 3 when this Python cannot do what was asked.

    paho_tls.py cert PORT CLIENT_ID TOPIC CA CERT KEY
    paho_tls.py psk  PORT CLIENT_ID TOPIC IDENTITY HEXKEY
"""

import ssl
import sys
import threading

import paho.mqtt.client as mqtt


def context(mode, args):
    if mode == "cert":
        ca, cert, key = args
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
        ctx.load_cert_chain(cert, key)
        return ctx
    identity, key = args
    if not hasattr(ssl.SSLContext, "set_psk_client_callback"):
        print(f"Python {sys.version.split()[0]} has no TLS-PSK (3.13+ has)", file=sys.stderr)
        sys.exit(3)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_psk_client_callback(lambda hint: (identity, bytes.fromhex(key)))
    return ctx


def main():
    mode, port, client_id, topic, *rest = sys.argv[1:]
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
    client.tls_set_context(context(mode, rest))
    connected = threading.Event()
    result = {}

    def on_connect(_client, _userdata, _flags, reason_code, _properties):
        result["reason"] = reason_code
        connected.set()

    client.on_connect = on_connect
    client.connect("127.0.0.1", int(port), keepalive=10)
    client.loop_start()
    if not connected.wait(10):
        print("no CONNACK within 10 s", file=sys.stderr)
        sys.exit(1)
    if result["reason"].is_failure:
        print(f"login refused: {result['reason']}", file=sys.stderr)
        sys.exit(1)
    info = client.publish(topic, "21.5", qos=1)
    info.wait_for_publish(10)
    client.disconnect()
    client.loop_stop()
    sys.exit(0 if info.is_published() else 1)


if __name__ == "__main__":
    main()
