"""An operator's headset joined to the PJSUA2 conference bridge.

The PyPI PJSUA2 wheel has no sound device, so the bridge runs on the null
device and each headset is an `AudioMediaPort` fed by a PyAudio stream:

    microphone --PyAudio input callback--> mic ring --onFrameRequested--> bridge
    bridge --onFrameReceived--> ear ring --PyAudio output callback--> earpiece

Two clocks meet here: the bridge's (the null device's timer) and the sound
card's. Each ring holds a few frames only, so the delay stays low: when the
producer runs ahead the oldest frame is dropped (overrun), when it falls
behind the consumer gets silence (underrun). Neither side ever waits: the
callbacks run on PJSUA2's media thread and PortAudio's audio thread, where
blocking would stall every call in the bridge or glitch the card.

Delay, each way: up to a bridge tick, what waits in the ring, and the card's
own buffering (PortAudio keeps two periods queued for the earpiece and hands
the microphone over a period at a time). So the card's period is half a
frame by default: the callbacks carry the odd half-frame over, the rings
still move whole frames.

The port is created at the card's own sample rate (the bridge's rate when
the card offers it); the bridge resamples between its clock and the port's.
A card that only does stereo is mixed down (microphone) or duplicated
(earpiece) here.

`create`, `connect`, `disconnect` and `close` must run on the thread that
owns PJSUA2.
"""

from __future__ import annotations

import array
import collections
import logging
import sys
from dataclasses import dataclass

from firmware import logs
from firmware.errors import SwitchboardError
from firmware.telephony.pj.support import destroy_port

log = logging.getLogger("switchboard.headset")


class HeadsetError(SwitchboardError, RuntimeError):
    """A headset could not be opened or used."""


class HeadsetNotFound(HeadsetError, LookupError):
    """No sound device of the configured name; the message lists those that exist."""


def _pyaudio():
    try:
        import pyaudio
    except ImportError as exc:  # the `telephony` extra is not installed
        raise HeadsetError(
            "PyAudio is not installed: install the telephony extra "
            "(pip install 'tas-switchboard[telephony]', needs Debian's portaudio19-dev)"
        ) from exc
    return pyaudio


@dataclass(frozen=True)
class Device:
    """A sound device as PyAudio (PortAudio) lists it."""

    index: int
    name: str
    inputs: int
    outputs: int
    default_rate: int

    def as_dict(self) -> dict:
        return {"index": self.index, "name": self.name, "inputs": self.inputs,
                "outputs": self.outputs, "default_rate": self.default_rate}


def list_devices(pa=None) -> list[Device]:
    """Every device PortAudio sees, in its order (ALSA names, e.g. from `aplay -L`)."""
    own = pa is None
    if own:
        pa = _pyaudio().PyAudio()
    try:
        found = []
        for i in range(pa.get_device_count()):
            info = pa.get_device_info_by_index(i)
            found.append(Device(i, info["name"], int(info["maxInputChannels"]),
                                int(info["maxOutputChannels"]), int(info["defaultSampleRate"])))
        return found
    finally:
        if own:
            pa.terminate()


def find_device(name: str, devices: list[Device]) -> Device:
    """The device called `name`: an exact match, else the one whose name starts with it.

    USB headsets show up as e.g. "USB Audio Device: - (hw:1,0)", so a prefix
    is enough in the site file; two devices matching the prefix is an error.
    """
    usable = [d for d in devices if d.inputs > 0 and d.outputs > 0]
    exact = [d for d in usable if d.name == name]
    if exact:
        return exact[0]
    prefixed = [d for d in usable if d.name.startswith(name)]
    if len(prefixed) == 1:
        return prefixed[0]
    names = ", ".join(repr(d.name) for d in usable) or "none"
    if prefixed:
        raise HeadsetNotFound(
            f"headset device {name!r} is ambiguous: it starts {len(prefixed)} device names "
            f"({', '.join(repr(d.name) for d in prefixed)}); give the whole name")
    others = [d.name for d in devices if d not in usable and d.name == name]
    why = f" ({others[0]!r} exists but is not both microphone and earpiece)" if others else ""
    raise HeadsetNotFound(
        f"no headset device named {name!r}{why}; devices with a microphone and an earpiece: "
        f"{names} (list them with `python -m firmware.telephony.pj.headset --list`)")


class FrameRing:
    """A few fixed-size frames between two threads that must never wait on each other.

    `deque.append` and `deque.popleft` are atomic in CPython, so no lock is
    needed; `maxlen` makes an append to a full ring drop the oldest frame.
    When the ring has held two frames or more at every read for `patience`
    reads (half a second of 10 ms frames), what sits there beyond one frame is only delay (the
    producer's clock ran ahead, or a hiccup filled the ring): it is dropped
    at once (`trimmed` counts frames), one click instead of a lasting echo.
    A device that delivers in bursts empties the ring between them, so its
    buffering is left alone: the ring's size (`buffer_ms`) must cover a burst.
    """

    def __init__(self, frames: int, frame_bytes: int, patience: int = 50):
        self.frames = collections.deque(maxlen=frames)
        self.silence = bytes(frame_bytes)
        self.patience = patience
        self._high = 0
        self.overruns = 0
        self.underruns = 0
        self.trimmed = 0
        self.puts = 0
        self.gets = 0

    def put(self, frame: bytes) -> None:
        self.puts += 1
        if len(self.frames) == self.frames.maxlen:
            self.overruns += 1
        self.frames.append(frame)

    def get(self) -> bytes:
        self.gets += 1
        frames = self.frames
        if len(frames) >= 2:
            self._high += 1
            if self._high >= self.patience:
                self._high = 0
                while len(frames) > 1:
                    try:
                        frames.popleft()
                    except IndexError:
                        break
                    self.trimmed += 1
        else:
            self._high = 0
        try:
            return frames.popleft()
        except IndexError:
            self.underruns += 1
            return self.silence

    def clear(self) -> None:
        self.frames.clear()
        self._high = 0

    def counts(self) -> dict:
        return {"frames_in": self.puts, "frames_out": self.gets, "overruns": self.overruns,
                "underruns": self.underruns, "trimmed": self.trimmed}


def _to_mono(data: bytes, channels: int) -> bytes:
    if channels == 1:
        return data
    samples = array.array("h", data)
    return samples[0::channels].tobytes()  # left channel: a headset's mic is mono


def _from_mono(data: bytes, channels: int) -> bytes:
    if channels == 1:
        return data
    mono = array.array("h", data)
    out = array.array("h", bytes(len(data) * channels))
    for c in range(channels):
        out[c::channels] = mono
    return out.tobytes()


def _port_class():
    import pjsua2 as pj

    class HeadsetPort(pj.AudioMediaPort):
        """The headset's port on the bridge; its callbacks run on PJSUA2's media thread."""

        def __init__(self, mic: FrameRing, ear: FrameRing):
            super().__init__()
            self.mic, self.ear = mic, ear

        def onFrameRequested(self, frame):  # bridge pulls the microphone
            try:
                data = self.mic.get()
            except Exception:  # never raise into the bridge: send silence
                data = self.mic.silence
            frame.type = pj.PJMEDIA_FRAME_TYPE_AUDIO
            frame.buf = pj.ByteVector(data)
            frame.size = len(data)

        def onFrameReceived(self, frame):  # bridge pushes to the earpiece
            if frame.type == pj.PJMEDIA_FRAME_TYPE_AUDIO and frame.size:
                data = bytes(frame.buf)
                if len(data) == len(self.ear.silence):  # the port's own frame size, always
                    self.ear.put(data)

    return HeadsetPort


class Headset:
    """One operator's headset: a sound device (microphone and earpiece) on the bridge.

    `device` is the name PyAudio lists (the site file's `headset`), e.g.
    "USB Audio Device: - (hw:1,0)" or an ALSA name from `.asoundrc`.
    `clock_rate` is the bridge's (PJSUA2 `medConfig.clockRate`); `buffer_ms`
    bounds what each ring holds, hence the delay the headset adds.
    """

    def __init__(self, device: str, *, clock_rate: int = 16000, ptime_ms: int = 10,
                 buffer_ms: int = 200, rate: int | None = None, period_ms: int | None = None,
                 pa=None):
        if not device or not isinstance(device, str):
            raise HeadsetError(f"headset device name must be a non-empty string, got {device!r}")
        self.device_name = device
        self.clock_rate = clock_rate
        self.ptime_ms = ptime_ms
        self.buffer_ms = buffer_ms
        # The card's period: PortAudio keeps two of them queued for the earpiece and hands
        # the microphone over a period at a time, so half a frame halves that delay.
        self.period_ms = period_ms or max(ptime_ms // 2, 5)
        if self.period_ms > ptime_ms or ptime_ms % self.period_ms:
            raise HeadsetError(f"headset period {self.period_ms} ms must divide its "
                               f"{ptime_ms} ms frames")
        self.wanted_rate = rate  # the site file may pin the card's rate (e.g. a hw: device)
        self._pa = pa
        self._own_pa = pa is None
        self.device: Device | None = None
        self.rate = 0
        self.in_channels = self.out_channels = 1
        self.samples_per_frame = 0
        self.samples_per_period = 0
        self.mic: FrameRing | None = None
        self.ear: FrameRing | None = None
        self.port = None
        self._streams = []
        self._connected = []  # AudioMedia objects this headset is joined to

    # -- life cycle (PJSUA2 thread) ---------------------------------------

    def create(self) -> "Headset":
        """Open the device and put the headset's port on the bridge."""
        pyaudio = _pyaudio()
        if self._pa is None:
            self._pa = pyaudio.PyAudio()
        self.device = find_device(self.device_name, list_devices(self._pa))
        self.rate = self._pick_rate(pyaudio)
        self.samples_per_frame = self.rate * self.ptime_ms // 1000
        self.samples_per_period = self.rate * self.period_ms // 1000
        frame_bytes = self.samples_per_frame * 2
        depth = max(2, -(-self.buffer_ms // self.ptime_ms))
        self.mic = FrameRing(depth, frame_bytes)
        self.ear = FrameRing(depth, frame_bytes)
        try:
            self._open_streams(pyaudio)
            self._create_port()
        except BaseException:
            self.close()
            raise
        return self

    def _pick_rate(self, pyaudio) -> int:
        """The bridge's rate if the card takes it both ways, else the card's own."""
        if self.wanted_rate:
            return self.wanted_rate
        for rate in (self.clock_rate, self.device.default_rate, 48000, 44100, 16000, 8000):
            try:
                if self._pa.is_format_supported(
                        rate, input_device=self.device.index, input_channels=1,
                        input_format=pyaudio.paInt16) and self._pa.is_format_supported(
                        rate, output_device=self.device.index, output_channels=1,
                        output_format=pyaudio.paInt16):
                    return rate
            except ValueError:
                continue
        return self.device.default_rate

    def _open(self, pyaudio, *, input: bool, callback):
        last = None
        limit = self.device.inputs if input else self.device.outputs
        for channels in (1, 2):
            if channels > limit:
                break
            kw = dict(rate=self.rate, format=pyaudio.paInt16, channels=channels,
                      frames_per_buffer=self.samples_per_period, stream_callback=callback,
                      start=False)
            if input:
                kw.update(input=True, input_device_index=self.device.index)
            else:
                kw.update(output=True, output_device_index=self.device.index)
            try:
                return self._pa.open(**kw), channels
            except (OSError, ValueError) as exc:
                last = exc
        raise HeadsetError(
            f"headset {self.device.name!r}: cannot open its "
            f"{'microphone' if input else 'earpiece'} at {self.rate} Hz, 16 bit: {last}")

    def _open_streams(self, pyaudio) -> None:
        cont = pyaudio.paContinue
        # A period may be a part of a frame: each callback carries the rest over (its own
        # thread only), so the rings still move whole frames.
        frame_bytes = self.samples_per_frame * 2
        mic_part, ear_part = bytearray(), bytearray()

        def mic_cb(data, frames, time_info, status):
            if self.period_ms != self.ptime_ms:
                mic_part.extend(_to_mono(data, self.in_channels))
                while len(mic_part) >= frame_bytes:
                    self.mic.put(bytes(mic_part[:frame_bytes]))
                    del mic_part[:frame_bytes]
                return (None, cont)
            self.mic.put(_to_mono(data, self.in_channels))
            return (None, cont)

        def ear_cb(data, frames, time_info, status):
            if self.period_ms != self.ptime_ms:
                need = frames * 2
                while len(ear_part) < need:
                    ear_part.extend(self.ear.get())
                out = bytes(ear_part[:need])
                del ear_part[:need]
                return (_from_mono(out, self.out_channels), cont)
            return (_from_mono(self.ear.get(), self.out_channels), cont)

        stream, self.in_channels = self._open(pyaudio, input=True, callback=mic_cb)
        self._streams.append(stream)
        stream, self.out_channels = self._open(pyaudio, input=False, callback=ear_cb)
        self._streams.append(stream)
        for s in self._streams:
            s.start_stream()

    def _create_port(self) -> None:
        import pjsua2 as pj

        fmt = pj.MediaFormatAudio()
        fmt.type = pj.PJMEDIA_TYPE_AUDIO
        fmt.id = pj.PJMEDIA_FORMAT_L16
        fmt.clockRate = self.rate
        fmt.channelCount = 1
        fmt.bitsPerSample = 16
        fmt.frameTimeUsec = self.ptime_ms * 1000
        fmt.avgBps = fmt.maxBps = self.rate * 16
        self.port = _port_class()(self.mic, self.ear)
        self.port.createPort(f"headset:{self.device.name}"[:30], fmt)

    def connect(self, media) -> None:
        """Join the headset to a call's audio both ways (call it from onCallMediaState)."""
        if self.port is None:
            raise HeadsetError(f"headset {self.device_name!r} is not open")
        if any(m.getPortId() == media.getPortId() for m in self._connected):
            return
        if not self._connected:  # nothing said before the call is sent into it
            self.mic.clear()
            self.ear.clear()
        media.startTransmit(self.port)
        self.port.startTransmit(media)
        self._connected.append(media)

    def disconnect(self, media=None) -> None:
        """Drop the headset from one call's audio (or from all, with no argument)."""
        keep = []
        for m in self._connected:
            if media is None or m.getPortId() == media.getPortId():
                for stop in (lambda: m.stopTransmit(self.port), lambda: self.port.stopTransmit(m)):
                    try:
                        stop()
                    except Exception:  # the call's port is already gone: nothing to undo
                        pass
            else:
                keep.append(m)
        self._connected = keep
        if not keep and self.ear is not None:
            self.ear.clear()  # no stale words in the earpiece on the next call

    def forget(self, port_id: int) -> None:
        """Forget a call whose media has gone away (no PJSUA2 call allowed on it)."""
        self._connected = [m for m in self._connected if m.getPortId() != port_id]

    @property
    def connected(self) -> int:
        return len(self._connected)

    def close(self) -> None:
        """Stop the streams and take the port off the bridge (before libDestroy)."""
        self.disconnect()
        for s in self._streams:
            try:
                s.stop_stream()
                s.close()
            except Exception:
                pass
        self._streams = []
        if self.port is not None:
            port, self.port = self.port, None
            destroy_port(port)  # off the bridge, no callback left in flight
        if self._own_pa and self._pa is not None:
            self._pa.terminate()
            self._pa = None

    def _latency_ms(self) -> dict:
        """PortAudio's own estimate of each stream's buffering (device side of the rings)."""
        try:
            mic, ear = self._streams
            return {"mic": round(mic.get_input_latency() * 1000, 1),
                    "ear": round(ear.get_output_latency() * 1000, 1)}
        except Exception:  # not open
            return {}

    def status(self) -> dict:
        return {
            "device": self.device.name if self.device else self.device_name,
            "open": self.port is not None,
            "rate": self.rate,
            "bridge_rate": self.clock_rate,
            "channels": {"mic": self.in_channels, "ear": self.out_channels},
            "buffer_ms": self.buffer_ms,
            "ptime_ms": self.ptime_ms,
            "period_ms": self.period_ms,
            "device_latency_ms": self._latency_ms(),
            "queued_frames": {"mic": len(self.mic.frames) if self.mic else 0,
                              "ear": len(self.ear.frames) if self.ear else 0},
            "connected": self.connected,
            "mic": self.mic.counts() if self.mic else {},
            "ear": self.ear.counts() if self.ear else {},
        }


def main(argv=None) -> int:
    """`python -m firmware.telephony.pj.headset --list [--json]`: the devices a headset can be named by."""
    import argparse
    import json

    parser = argparse.ArgumentParser(prog="python -m firmware.telephony.pj.headset", description=main.__doc__)
    parser.add_argument("--list", action="store_true", help="list sound devices")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    logs.setup("headset")
    try:
        devices = list_devices()
    except HeadsetError as exc:
        log.error("%s", exc)        # one line, "headset: ...", as every tool's errors
        return 2
    if args.json:
        print(json.dumps([d.as_dict() for d in devices]))
    else:
        for d in devices:
            print(f"{d.name!r}: {d.inputs} in, {d.outputs} out, {d.default_rate} Hz")
        if not devices:
            print("no sound devices")
    return 0


if __name__ == "__main__":
    sys.exit(main())
