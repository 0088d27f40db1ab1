"""The Daytona emulator's stateful Python worker: one process per interpreter context.

Written for the emulator from the behaviour of the Daytona daemon's interpreter (v0.190.0); it
shares no code with the daemon's worker. Runs on Python 3.6 and later.

Protocol, one JSON object per line, private to the emulator:

- requests arrive on the descriptor the worker starts with as stdin:
  {"id": str, "code": str, "envs": {name: value}}
- replies leave on the descriptor it starts with as stdout: {"type": "ready", "pid": int} once,
  then for each request {"id", "type": "stdout" | "stderr", "text"} chunks, an
  {"id", "type": "error", "name", "value", "traceback"} chunk when the code raised, and last
  {"id", "type": "control", "text": "completed" | "interrupted"}.

Both channels are moved off descriptors 0, 1 and 2 (which then read and write /dev/null), so
code calling input() gets end-of-file instead of the next request, and a child process writing
to its inherited stdout cannot break a reply line. SIGINT interrupts the user's code
(KeyboardInterrupt, reported as "interrupted") and is held back while the worker itself runs.
"""

import io
import json
import os
import re
import signal
import sys
import threading
import traceback

# Characters a stream buffers before sending them without waiting for a newline.
FLUSH_AT = 1024
# Characters of one chunk at most, so a single huge write cannot make a huge reply line.
CHUNK_MAX = 64 * 1024
# The name code is compiled under: it shows in SyntaxError messages, as on the daemon.
SOURCE_NAME = "<string>"
# The name tracebacks give the user's code.
SHOWN_NAME = "<stdin>"
LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(text):
    # A str may hold lone surrogates (undecodable file names); JSON readers reject them as
    # escapes, so they go out as U+FFFD, as Go's encoder would write them.
    return LONE_SURROGATE.sub("\ufffd", text)


class Channel:
    """The reply channel, and whether a SIGINT may interrupt what runs right now."""

    def __init__(self, replies):
        self.replies = replies
        self.in_user_code = False
        self.interrupt_pending = False

    def send(self, message):
        line = (json.dumps(message) + "\n").encode("ascii")
        if threading.current_thread() is not threading.main_thread():
            # Signals only reach the main thread, so a thread's write cannot be cut by one;
            # and an interrupt it took over would never reach the user's code.
            self.replies.write(line)
            self.replies.flush()
            return
        # A reply is never cut by an interrupt: one that arrives while it is written is
        # delivered once the line is out.
        resume = self.in_user_code
        self.in_user_code = False
        try:
            self.replies.write(line)
            self.replies.flush()
        finally:
            self.in_user_code = resume
        if resume and self.interrupt_pending:
            self.interrupt_pending = False
            raise KeyboardInterrupt

    def on_sigint(self, _signum, _frame):
        if self.in_user_code:
            raise KeyboardInterrupt
        self.interrupt_pending = True


class OutputStream(io.TextIOBase):
    """sys.stdout or sys.stderr while a request runs: text goes out as chunks of its request."""

    def __init__(self, channel, request_id, kind):
        super().__init__()
        self.channel = channel
        self.request_id = request_id
        self.kind = kind
        self.parts = []
        self.size = 0

    @property
    def encoding(self):
        return "utf-8"

    @property
    def errors(self):
        return "strict"

    def writable(self):
        return True

    def isatty(self):
        return False

    def write(self, data):
        if not isinstance(data, str):
            data = str(data)
        if not data:
            return 0
        self.parts.append(data)
        self.size += len(data)
        if "\n" in data or self.size >= FLUSH_AT:
            self.flush()
        return len(data)

    def flush(self):
        if not self.parts:
            return
        text = clean_text("".join(self.parts))
        self.parts = []
        self.size = 0
        for start in range(0, len(text), CHUNK_MAX):
            self.channel.send(
                {"id": self.request_id, "type": self.kind, "text": text[start:start + CHUNK_MAX]}
            )


def user_traceback(error):
    """The traceback as the daemon shows it: only the user's frames, named <stdin>."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename == SOURCE_NAME]
    last = "{}: {}\n".format(type(error).__name__, error)
    if not frames:
        return last
    lines = ["Traceback (most recent call last):\n"]
    for frame in frames:
        lines.append('  File "{}", line {}\n'.format(SHOWN_NAME, frame.lineno))
        if frame.line:
            lines.append("    {}\n".format(frame.line))
    lines.append(last)
    return "".join(lines)


class Worker:
    def __init__(self, channel, idle_out):
        self.channel = channel
        self.idle_out = idle_out
        self.namespace = {
            "__name__": "__main__",
            "__doc__": None,
            "__package__": None,
            "__builtins__": __builtins__,
        }

    @staticmethod
    def set_envs(envs, previous):
        """Applies `envs` to os.environ, noting in `previous` what to put back afterwards."""
        for name, value in envs.items():
            name = str(name)
            if name not in previous:
                previous[name] = os.environ.get(name)
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = str(value)

    @staticmethod
    def restore_envs(previous):
        for name, value in previous.items():
            try:
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            except (ValueError, OSError):
                pass

    def run(self, request):
        request_id = str(request.get("id", ""))
        code = request.get("code") or ""
        envs = request.get("envs") or {}
        out = OutputStream(self.channel, request_id, "stdout")
        err = OutputStream(self.channel, request_id, "stderr")
        ending, failure, previous = "completed", None, {}
        # An interrupt meant for an earlier request must not stop this one.
        self.channel.interrupt_pending = False
        try:
            try:
                self.channel.in_user_code = True
                if isinstance(envs, dict):
                    self.set_envs(envs, previous)
                sys.stdout, sys.stderr = out, err
                exec(compile(code, SOURCE_NAME, "exec"), self.namespace)
                out.flush()
                err.flush()
            finally:
                self.channel.in_user_code = False
                sys.stdout, sys.stderr = self.idle_out, self.idle_out
        except KeyboardInterrupt:
            ending = "interrupted"
        except SystemExit:
            pass
        except BaseException as error:  # noqa: B036 - whatever the code raised is its result
            failure = {
                "id": request_id,
                "type": "error",
                "name": type(error).__name__,
                "value": clean_text(str(error)),
                "traceback": clean_text(user_traceback(error)),
            }
        self.channel.in_user_code = False
        sys.stdout, sys.stderr = self.idle_out, self.idle_out
        self.restore_envs(previous)
        for stream in (out, err):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001 - the reply below must go out regardless
                pass
        if failure is not None:
            self.channel.send(failure)
        self.channel.send({"id": request_id, "type": "control", "text": ending})

    def serve(self, requests):
        while True:
            try:
                line = requests.readline()
                if not line:
                    return
                line = line.strip()
                if not line:
                    continue
                request = json.loads(line.decode("utf-8"))
            except KeyboardInterrupt:
                continue
            except ValueError:
                # Not a request the emulator wrote; nothing to answer it with.
                continue
            if not isinstance(request, dict):
                continue
            try:
                self.run(request)
            except KeyboardInterrupt:
                continue


def main():
    requests = os.fdopen(os.dup(0), "rb")
    replies = os.fdopen(os.dup(1), "wb")
    complaints = os.fdopen(os.dup(2), "w")
    try:
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.close(null)
        idle_out = open(os.devnull, "w")
        sys.stdin = open(os.devnull, "r")
        sys.stdout = sys.stderr = idle_out
        # The daemon's worker lives in its temp dir, which Python puts first on the import path.
        if sys.path:
            sys.path[0] = os.environ.get("TMPDIR") or "/tmp"
        channel = Channel(replies)
        signal.signal(signal.SIGINT, channel.on_sigint)
        channel.send({"type": "ready", "pid": os.getpid()})
    except BaseException:  # noqa: B036 - told to the emulator, which reports why it failed
        traceback.print_exc(file=complaints)
        complaints.flush()
        raise SystemExit(1)
    complaints.close()
    Worker(channel, idle_out).serve(requests)


if __name__ == "__main__":
    main()
