"""Analog lines through USB voice modems (ITU-T V.253 over pyserial).

- ``dle``: the DLE-shielded byte stream of voice mode (escaping, events);
- ``codec``: the modems' sample formats (mu-law, A-law, 8-bit and 16-bit linear) to and
  from 16-bit PCM;
- ``drift``: the buffer that keeps the modem's and the bridge's clocks apart;
- ``driver``: the AT / V.253 conversation with one modem and its vendor profiles;
- ``sim``: a simulated modem on a pseudo-terminal pair (tests, benchmarks, trying it out);
- ``supervisor``: the daemon's side: one gateway process per modem trunk, faults, restarts.

The gateway process itself, which owns PJSUA2, is ``firmware.telephony.pj.modemgateway``.
"""
