/* The project's pjproject configuration: scripts/build-pjsua2.sh copies this file to
 * pjlib/include/pj/config_site.h before building, and a change to it (its hash) makes a new
 * wheel. The wheel on PyPI (pjsua2-python) keeps pjproject's defaults, which turn out to hold
 * 4 calls per process whatever maxCalls says (../shared/FACTS.md).
 */

/* Calls per process. The TAS-100 (the largest shipped board) has 115 lines; a call that an
 * operator picks up takes a second slot for the leg to the position. 128 slots hold all 115
 * lines ringing at once in one worker, and a second worker is there for failover (see
 * firmware/telephony/adapter.py). Measured: 64 self-calls (128 slots) fit, the 65th is refused
 * with a pj.Error, no abort. */
#define PJSUA_MAX_CALLS                 128

/* Each call's media is a port on the conference bridge; players (hold music, messages),
 * recorders and tone generators take more. */
#define PJSUA_MAX_CONF_PORTS            (PJSUA_MAX_CALLS * 2 + 16)
#define PJSUA_MAX_PLAYERS               PJSUA_MAX_CALLS
#define PJSUA_MAX_RECORDERS             PJSUA_MAX_CALLS

/* Sockets the I/O queue watches: SIP transports plus RTP and RTCP per call, and each closed
 * call's pair stays registered for 500 ms. The default (64) aborts a process on about 28 call
 * set-ups within half a second; 1024 (FD_SETSIZE, the select() queue's ceiling) holds a burst
 * of every line at once with room to spare. */
#define PJ_IOQUEUE_MAX_HANDLES          1024

#define PJ_HAS_IPV6                     1

/* Audio only: no video, and no sound device (the bridge runs on the null device; headsets are
 * PyAudio streams joined through AudioMediaPort, see firmware/headset.py). */
#undef  PJMEDIA_HAS_VIDEO
#define PJMEDIA_HAS_VIDEO               0
#undef  PJMEDIA_AUDIO_DEV_HAS_PORTAUDIO
#define PJMEDIA_AUDIO_DEV_HAS_PORTAUDIO 0
#undef  PJMEDIA_AUDIO_DEV_HAS_ALSA
#define PJMEDIA_AUDIO_DEV_HAS_ALSA      0
#undef  PJMEDIA_AUDIO_DEV_HAS_NULL_AUDIO
#define PJMEDIA_AUDIO_DEV_HAS_NULL_AUDIO 0
