# SPDX-License-Identifier: MIT
# apiclient.py — the API tests' HTTP side: a small client (http.client, one connection per
# request), a server-sent-events reader over a raw http.client response, and the OpenAPI check
# that every response the tests receive goes through (operation by method + path template,
# response by status and content type, schema by jsonschema with $refs into the document).
# Must not: know what the daemon does; decide what a status means (the tests and the schema do).

import http.client
import json
import os
import queue
import re
import socket
import threading
import time
import urllib.parse

import jsonschema

from harness import TestFailure, check

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OPENAPI_PATH = os.path.join(REPO, "schema", "openapi.json")

METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


class OpenApi:
    """schema/openapi.json: finds the operation of a request and checks a response against it.
    Anything the document does not describe (path, method, status, content type) is a failure:
    the document is the contract, the tests hold the daemon to it."""

    def __init__(self, path=OPENAPI_PATH):
        self.path = path
        check(os.path.exists(path), "SCHEMA: %s does not exist (the API contract)" % path)
        with open(path, encoding="utf-8") as f:
            try:
                self.doc = json.load(f)
            except ValueError as e:
                raise TestFailure("SCHEMA: %s is not JSON: %s" % (path, e))
        check(str(self.doc.get("openapi", "")).startswith("3.1"),
              "SCHEMA: openapi version %r, expected 3.1.x" % self.doc.get("openapi"))
        self.resolver = jsonschema.RefResolver(base_uri="", referrer=self.doc)
        self.routes = []
        for template, item in self.doc.get("paths", {}).items():
            parts = re.split(r"(\{[^}]+\})", template)
            rx = "^" + "".join("[^/]+" if p.startswith("{") else re.escape(p)
                               for p in parts) + "$"
            # Second chance for a trailing parameter described as a path ("/{file}": a path
            # inside the web root), which OpenAPI templating cannot express with slashes.
            wide = None
            if parts[-1] == "" and len(parts) >= 2 and parts[-2].startswith("{"):
                wide = "^" + "".join("[^/]+" if p.startswith("{") else re.escape(p)
                                     for p in parts[:-2]) + ".+$"
            literal = len(re.sub(r"\{[^}]+\}", "", template))
            self.routes.append((re.compile(rx), literal, template, item,
                                re.compile(wide) if wide else None))
        # Longest literal part first: /api/v1/jobs.csv before /api/v1/jobs/{uuid} and friends.
        self.routes.sort(key=lambda r: -r[1])
        self.checked = 0

    def deref(self, obj):
        seen = 0
        while isinstance(obj, dict) and "$ref" in obj and len(obj) == 1:
            ref = obj["$ref"]
            check(ref.startswith("#/"), "SCHEMA: non-local $ref %r" % ref)
            node = self.doc
            for part in ref[2:].split("/"):
                part = part.replace("~1", "/").replace("~0", "~")
                check(isinstance(node, dict) and part in node, "SCHEMA: dangling $ref %r" % ref)
                node = node[part]
            obj = node
            seen += 1
            check(seen < 20, "SCHEMA: $ref loop at %r" % ref)
        return obj

    def operation(self, method, path):
        """(template, operation object) for a request path (query string ignored)."""
        raw = urllib.parse.urlsplit(path).path
        for wide in (False, True):
            for rx, _, template, item, wrx in self.routes:
                r = wrx if wide else rx
                if r is not None and r.match(raw):
                    item = self.deref(item)
                    op = item.get(method.lower())
                    if op is not None:
                        return template, op
        return None, None

    def response_spec(self, op, status):
        responses = op.get("responses", {})
        for key in (str(status), "%dXX" % (status // 100), "%dxx" % (status // 100), "default"):
            if key in responses:
                return key, self.deref(responses[key])
        return None, None

    def validate_instance(self, schema, instance, what):
        try:
            jsonschema.Draft202012Validator(schema, resolver=self.resolver).validate(instance)
        except jsonschema.ValidationError as e:
            where = "$" + "".join("[%r]" % p if isinstance(p, int) else ".%s" % p
                                  for p in e.absolute_path)
            raise TestFailure("SCHEMA: %s does not match schema/openapi.json at %s: %s\n"
                              "instance: %s" % (what, where, e.message,
                                                json.dumps(instance)[:1500]))
        except jsonschema.SchemaError as e:
            raise TestFailure("SCHEMA: schema/openapi.json has an invalid schema for %s: %s"
                              % (what, e.message))

    def media_spec(self, content, ctype):
        """The content entry for a response's Content-Type (exact, then by media type)."""
        if ctype is None:
            return None, None
        norm = ctype.replace(" ", "").lower()
        base = norm.split(";")[0]
        for key, val in content.items():
            if key.replace(" ", "").lower() == norm:
                return key, self.deref(val)
        for key, val in content.items():
            kbase = key.replace(" ", "").lower().split(";")[0]
            kparams = set(key.replace(" ", "").lower().split(";")[1:])
            if kbase == base and kparams <= set(norm.split(";")[1:]):
                return key, self.deref(val)
        for key, val in content.items():  # media ranges: "*/*", "text/*"
            kbase = key.replace(" ", "").lower().split(";")[0]
            if kbase == "*/*" or (kbase.endswith("/*") and base.startswith(kbase[:-1])):
                return key, self.deref(val)
        return None, None

    def check_response(self, method, path, status, ctype, body, stream=False):
        """Fail unless the response is one the document describes. `body` is the parsed JSON
        for JSON types, else the text (None for a stream whose body is checked elsewhere)."""
        what = "%s %s -> %s" % (method, path, status)
        template, op = self.operation(method, path)
        check(op is not None, "SCHEMA: %s: no operation for %s %s in schema/openapi.json"
              % (what, method, urllib.parse.urlsplit(path).path))
        key, resp = self.response_spec(op, status)
        check(resp is not None, "SCHEMA: %s: status %s is not documented for %s %s "
              "(documented: %s)" % (what, status, method, template,
                                    ", ".join(sorted(op.get("responses", {})))))
        content = resp.get("content")
        if not content:
            check(body in (None, "", b"") or stream,
                  "SCHEMA: %s: the document says no body, got %s %r" % (what, ctype,
                                                                     str(body)[:200]))
            self.checked += 1
            return
        mkey, media = self.media_spec(content, ctype)
        check(media is not None, "SCHEMA: %s: content type %r is not documented for status %s "
              "of %s %s (documented: %s)" % (what, ctype, key, method, template,
                                             ", ".join(content)))
        schema = media.get("schema")
        if schema is not None and body is not None and not stream:
            self.validate_instance(schema, body, what)
        self.checked += 1

    def schema_named(self, name):
        return self.doc.get("components", {}).get("schemas", {}).get(name)


class Response:
    def __init__(self, method, path, status, headers, raw):
        self.method = method
        self.path = path
        self.status = status
        self.headers = headers  # lower-case name -> value (last one wins)
        self.raw = raw
        self.ctype = headers.get("content-type")
        self.json = None
        self.text = None

    def media(self):
        return (self.ctype or "").split(";")[0].strip().lower()

    def describe(self):
        return "%s %s -> %s %s: %s" % (self.method, self.path, self.status, self.ctype,
                                       self.raw[:600].decode("utf-8", "replace"))

    def problem(self):
        """Checks an RFC 9457 problem body with the documented members; returns it."""
        check(self.media() == "application/problem+json",
              "HOST: %s: error not application/problem+json" % self.describe())
        p = self.json
        check(isinstance(p, dict), "HOST: %s: problem body is not an object" % self.describe())
        for k in ("type", "title", "status", "detail", "code"):
            check(k in p, "HOST: %s: problem lacks %r" % (self.describe(), k))
        check(p["status"] == self.status, "HOST: %s: problem status %r != HTTP status"
              % (self.describe(), p["status"]))
        check(p["type"] == "https://espstation.dev/problems/%s" % p["code"],
              "HOST: %s: problem type %r does not end in its code %r"
              % (self.describe(), p["type"], p["code"]))
        return p


class Client:
    """Requests to one daemon. Every response is checked against the OpenAPI document."""

    def __init__(self, port, api, host="127.0.0.1", token=None, timeout=15.0, log=None):
        self.host = host
        self.port = port
        self.api = api
        self.token = token
        self.timeout = timeout
        self.log = log
        self.count = 0

    def with_token(self, token):
        c = Client(self.port, self.api, self.host, token, self.timeout, self.log)
        return c

    def headers_for(self, token, headers):
        h = {}
        if token is not None:
            h["Authorization"] = "Bearer %s" % token
        h.update(headers or {})
        return h

    def request(self, method, path, body=None, headers=None, token="default",
                content_type=None, validate=True, timeout=None):
        """One request on a fresh connection. body: dict/list (sent as JSON), bytes or str."""
        tok = self.token if token == "default" else token
        h = self.headers_for(tok, headers)
        data = None
        if body is not None:
            if isinstance(body, (dict, list)) or body is None:
                data = json.dumps(body).encode()
                h.setdefault("Content-Type", content_type or "application/json")
            elif isinstance(body, str):
                data = body.encode()
                h.setdefault("Content-Type", content_type or "application/json")
            else:
                data = body
                h.setdefault("Content-Type", content_type or "application/octet-stream")
        elif content_type:
            h["Content-Type"] = content_type
        h = {k: v for k, v in h.items() if v is not None}  # {"Content-Type": None}: send none
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout or self.timeout)
        try:
            conn.request(method, path, body=data, headers=h)
            r = conn.getresponse()
            raw = r.read()
            hdrs = {k.lower(): v for k, v in r.getheaders()}
            resp = Response(method, path, r.status, hdrs, raw)
            resp.all_headers = r.getheaders()
        finally:
            conn.close()
        self.count += 1
        if self.log:
            self.log("%s %s%s -> %s %s" % (method, path, " (token)" if tok else "", resp.status,
                                           resp.ctype))
        self.decode(resp)
        if validate:
            self.api.check_response(method, path, resp.status, resp.ctype,
                                    resp.json if resp.json is not None else resp.text)
        return resp

    @staticmethod
    def decode(resp):
        m = resp.media()
        if m in ("application/json", "application/problem+json"):
            try:
                resp.json = json.loads(resp.raw.decode("utf-8"))
            except (ValueError, UnicodeDecodeError) as e:
                raise TestFailure("HOST: %s: body is not UTF-8 JSON (%s)" % (resp.describe(), e))
        elif m.startswith("text/") or m.endswith("javascript") or m.endswith("+xml"):
            try:
                resp.text = resp.raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise TestFailure("HOST: %s: text body is not UTF-8 (%s)" % (resp.describe(), e))
        return resp

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, body=body, **kw)

    def expect(self, status, method, path, body=None, code=None, **kw):
        """A request that must answer `status` (an int or a tuple of ints); a 4xx/5xx must be a
        problem with `code` when given. Returns the response."""
        r = self.request(method, path, body=body, **kw)
        want = status if isinstance(status, tuple) else (status,)
        check(r.status in want, "HOST: %s, expected %s" % (r.describe(), "/".join(map(str, want))))
        if r.status >= 400 and (code is not None or r.media() == "application/problem+json"):
            p = r.problem()
            if code is not None:
                codes = code if isinstance(code, tuple) else (code,)
                check(p["code"] in codes, "HOST: %s: problem code %r, expected %s"
                      % (r.describe(), p["code"], "/".join(codes)))
        return r

    def ok(self, method, path, body=None, status=200, **kw):
        r = self.expect(status, method, path, body=body, **kw)
        return r.json if r.json is not None else r.text


# ---------------------------------------------------------------- server-sent events

class Event:
    def __init__(self, id_, type_, data, raw):
        self.id = id_
        self.type = type_
        self.raw = raw
        self.data = data

    def __repr__(self):
        return "Event(id=%r, type=%r, data=%s)" % (self.id, self.type, self.raw[:200])


class EventStream:
    """GET /api/v1/events on a raw http.client response. A reader thread parses the
    text/event-stream lines (`id:`, `event:`, `data:`, `:` comments, blank line = dispatch; W3C
    rules: one optional space after the colon, several data lines joined by \\n) and queues
    events; next() waits for one with a timeout. Each event's data must be JSON."""

    def __init__(self, client, last_event_id=None, query=None, token="default",
                 connect_timeout=10.0, validate_event=None):
        self.client = client
        path = "/api/v1/events"
        if query:
            path += "?" + urllib.parse.urlencode(query)
        self.path = path
        tok = client.token if token == "default" else token
        h = client.headers_for(tok, {"Accept": "text/event-stream"})
        if last_event_id is not None:
            h["Last-Event-ID"] = last_event_id
        self.conn = http.client.HTTPConnection(client.host, client.port, timeout=connect_timeout)
        self.conn.request("GET", path, headers=h)
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.headers = {k.lower(): v for k, v in self.resp.getheaders()}
        self.ctype = self.headers.get("content-type")
        self.q = queue.Queue()
        self.comments = []
        self.closed = False
        self.error = None
        self.validate_event = validate_event
        if self.status != 200:
            raw = self.resp.read()
            r = Response("GET", path, self.status, self.headers, raw)
            Client.decode(r)
            client.api.check_response("GET", path, r.status, r.ctype,
                                      r.json if r.json is not None else r.text)
            self.response = r
            self.conn.close()
            self.closed = True
            return
        self.response = None
        client.api.check_response("GET", path, 200, self.ctype, None, stream=True)
        check((self.ctype or "").split(";")[0].strip() == "text/event-stream",
              "HOST: GET %s: content type %r" % (path, self.ctype))
        # Reads block in the thread; the socket has no timeout there (close() unblocks it).
        self.conn.sock.settimeout(None)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        id_, type_, data = None, None, []
        try:
            while True:
                line = self.resp.readline()
                if not line:
                    break
                line = line.decode("utf-8").rstrip("\r\n")
                if line == "":
                    if data or type_ is not None:
                        raw = "\n".join(data)
                        try:
                            obj = json.loads(raw)
                        except ValueError:
                            self.error = "event data is not JSON: %r" % raw[:300]
                            obj = None
                        self.q.put(Event(id_, type_ or "message", obj, raw))
                    id_, type_, data = None, None, []
                    continue
                if line.startswith(":"):
                    self.comments.append(line)
                    continue
                field, _, value = line.partition(":")
                if value.startswith(" "):
                    value = value[1:]
                if field == "id":
                    id_ = value
                elif field == "event":
                    type_ = value
                elif field == "data":
                    data.append(value)
                elif field == "retry":
                    pass
                else:
                    self.error = "unknown field in event stream: %r" % line[:200]
        except Exception as e:  # noqa: BLE001 — also http.client's own errors on close()
            if not self.closed:
                self.error = self.error or ("read error: %s: %s" % (type(e).__name__, e))
        self.q.put(None)

    def next(self, timeout=10.0, what="an event"):
        """The next event, or a failure after `timeout` s or when the stream ended."""
        try:
            ev = self.q.get(timeout=timeout)
        except queue.Empty:
            raise TestFailure("HOST: no event on %s within %.0f s (waiting for %s)"
                              % (self.path, timeout, what))
        if ev is None:
            self.q.put(None)
            raise TestFailure("HOST: event stream %s ended (%s) while waiting for %s"
                              % (self.path, self.error or "closed by the daemon", what))
        check(self.error is None, "HOST: event stream %s: %s" % (self.path, self.error))
        check(ev.data is not None, "HOST: event stream %s: data of %r is not JSON"
              % (self.path, ev))
        if self.validate_event:
            self.validate_event(ev)
        return ev

    def next_or_none(self, timeout):
        """The next event, None on timeout, "closed" when the stream ended."""
        try:
            ev = self.q.get(timeout=timeout)
        except queue.Empty:
            return None
        if ev is None:
            self.q.put(None)
            return "closed"
        if self.validate_event and ev.data is not None:
            self.validate_event(ev)
        return ev

    def until(self, pred, timeout, what):
        """Events up to and including the first one for which pred(ev) holds."""
        out = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TestFailure("HOST: %s not seen on the event stream within %.0f s "
                                  "(got %d events: %s)" % (what, timeout, len(out),
                                                           [(e.type, e.id) for e in out][-20:]))
            ev = self.next(timeout=left, what=what)
            out.append(ev)
            if pred(ev):
                return out

    def close(self):
        self.closed = True
        try:
            self.conn.sock.shutdown(socket.SHUT_RDWR)
        except (OSError, AttributeError):
            pass
        self.conn.close()
