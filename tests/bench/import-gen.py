#!/usr/bin/env python3
"""A realistic bulk-import file for the import bench (and for trying imports by hand).

    tests/bench/import-gen.py [--rows N] [--representatives R] [--max-clients C]
                              [--bad FRACTION] [--seed S] [--today YYYY-MM-DD]
                              [--expect FILE] OUT.csv

Court-appointed mandates as a registry would deliver them: R representatives (bewindvoerder
offices by KvK number, and professional curators and mentors by BSN) with up to C clients each,
every client (a valid BSN, 11-check) under bewind, curatele or mentorschap for one to three
services of the demo catalogue (tools/seed/demo.sql), periods within each service's maximum and
still running.  A FRACTION of the rows (default 1%) is wrong, spread evenly over every kind of
mistake the import rejects: one of each reject code.  --expect writes the counts a first import
into an empty source must report (JSON), so the bench can check them.

Deterministic for a given --seed and --today; seeds that differ modulo 50 draw different people,
so runs against one database with new seeds do not overlap.
"""
import argparse
import datetime
import json
import random
import sys

# The demo catalogue: code -> (max_duration_days, person, organisation, kinds)
SERVICES = {
    'uwv-ww-aanvragen': (365, True, True, {'voluntary', 'bewind', 'curatele'}),
    'uwv-wia-inzien': (730, True, False, {'voluntary', 'bewind', 'curatele', 'mentorschap'}),
    'belasting-aangifte': (1827, True, True, {'voluntary', 'bewind', 'curatele'}),
    'svb-aow-beheren': (1827, True, True, {'bewind', 'curatele', 'mentorschap'}),
}
COURTS = ['Rechtbank Amsterdam', 'Rechtbank Den Haag', 'Rechtbank Gelderland',
          'Rechtbank Limburg', 'Rechtbank Midden-Nederland', 'Rechtbank Noord-Holland',
          'Rechtbank Noord-Nederland', 'Rechtbank Oost-Brabant', 'Rechtbank Overijssel',
          'Rechtbank Rotterdam', 'Rechtbank Zeeland-West-Brabant']
COURT_CODES = [13, 9, 5, 3, 16, 15, 18, 1, 8, 10, 2]

# Every way a row can be wrong, one reject code each (the ones the row checks give and the
# ones the set-based checks give).
BAD_KINDS = ['row-too-long', 'invalid-encoding', 'malformed-row', 'missing-field',
             'field-too-long', 'invalid-party', 'invalid-bsn', 'principal-not-person',
             'self-mandate', 'invalid-kind', 'court-ref-required', 'invalid-date',
             'period-inverted', 'unknown-service', 'representative-type-not-allowed',
             'kind-not-allowed', 'period-too-long', 'already-ended', 'duplicate-external-ref',
             'legal-mandate-exists', 'mandate-overlap']
HEADER = 'external_ref,principal,representative,service,kind,valid_from,valid_until,court_ref,court'


def bsn(prefix8):
    """The BSN with these first 8 digits, or None when no check digit makes it valid."""
    digits = [int(c) for c in '%08d' % prefix8]
    check = sum((9 - i) * d for i, d in enumerate(digits)) % 11
    return None if check == 10 else '%08d%d' % (prefix8, check)


class Numbers:
    """Distinct valid BSNs in a scrambled order (a bijection on 8-digit prefixes)."""

    def __init__(self, start):
        self.i = start

    def next(self):
        while True:
            self.i += 1
            v = bsn((self.i * 7654321 + 1234567) % 100000000)
            if v is not None and v != '000000000':
                return 'bsn:' + v


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('out')
    ap.add_argument('--rows', type=int, default=1000000)
    ap.add_argument('--representatives', type=int, default=2000)
    ap.add_argument('--max-clients', type=int, default=5000)
    ap.add_argument('--bad', type=float, default=0.01)
    ap.add_argument('--seed', type=int, default=20260101)
    ap.add_argument('--today', default=datetime.date.today().isoformat())
    ap.add_argument('--expect')
    args = ap.parse_args()
    rnd = random.Random(args.seed)
    today = datetime.date.fromisoformat(args.today)

    # Representatives: 70% offices (kvk), 30% professionals (bsn); client counts skewed, at
    # most --max-clients, scaled so that the rows come out at about --rows.
    # People of different seeds do not meet (up to ~1.8 million a seed).
    people = Numbers((args.seed % 50) * 2000000)
    reps = []
    for r in range(args.representatives):
        if rnd.random() < 0.7:
            reps.append(('kvk:%08d' % (10000000 + r * 37 + 11), 'O%04d' % r))
        else:
            reps.append((people.next(), 'P%04d' % r))
    weights = [rnd.paretovariate(1.2) for _ in reps]
    services_per_client = 2.0
    scale = args.rows / services_per_client / sum(weights)
    clients = [max(1, min(args.max_clients, int(w * scale))) for w in weights]

    nbad = int(args.rows * args.bad)
    bad_at = set(rnd.sample(range(2, args.rows + 2), nbad)) if nbad else set()
    expect = {'rows': args.rows, 'rejected': nbad, 'inserted': args.rows - nbad,
              'rejects_by_code': {}}
    good = []  # a sample of good rows (fields), for duplicates and overlaps
    bad_no = 0

    def period(service):
        max_days = SERVICES[service][0]
        start = today - datetime.timedelta(days=rnd.randint(0, max_days // 2))
        length = rnd.randint(max(60, (today - start).days + 30), max_days)
        return start, start + datetime.timedelta(days=length)

    out = open(args.out, 'wb')
    out.write(HEADER.encode() + b'\n')
    line = 1
    written = 0
    rep_i = 0
    client_i = 0
    while written < args.rows:
        rep, office = reps[rep_i % len(reps)]
        if client_i >= clients[rep_i % len(reps)]:
            rep_i += 1
            client_i = 0
            continue
        client_i += 1
        principal = people.next()
        org = rep.startswith('kvk:')
        kind = rnd.choices(['bewind', 'curatele', 'mentorschap'], [70, 20, 10])[0]
        offered = [s for s, (_, p, o, kinds) in SERVICES.items()
                   if (o if org else p) and kind in kinds]
        if not offered:
            kind = 'bewind'
            offered = [s for s, (_, p, o, kinds) in SERVICES.items() if (o if org else p)]
        for service in rnd.sample(offered, min(len(offered), rnd.randint(1, 3))):
            if written >= args.rows:
                break
            line += 1
            written += 1
            start, until = period(service)
            court = rnd.randrange(len(COURTS))
            ref = 'C/%02d/%06d / %s RK %02d-%03d' % (
                COURT_CODES[court], rnd.randrange(1000000), 'BW' if kind == 'bewind' else
                'CU' if kind == 'curatele' else 'ME', start.year % 100, rnd.randrange(1000))
            f = ['%s-%07d' % (office, line), principal, rep, service, kind, start.isoformat(),
                 until.isoformat(), ref, COURTS[court]]
            if line in bad_at:
                code = BAD_KINDS[bad_no % len(BAD_KINDS)]
                bad_no += 1
                if code == 'row-too-long' and expect['rejects_by_code'].get(code, 0) >= 10:
                    code = BAD_KINDS[bad_no % len(BAD_KINDS)]  # a few 70 KB lines are enough
                    bad_no += 1
                if code in ('duplicate-external-ref', 'legal-mandate-exists',
                            'mandate-overlap') and not good:
                    code = 'invalid-kind'
                expect['rejects_by_code'][code] = expect['rejects_by_code'].get(code, 0) + 1
                out.write(spoil(code, f, good, rnd, today) + b'\n')
            else:
                if len(good) < 10000 or rnd.random() < 0.01:
                    good.append(list(f))
                    if len(good) > 10000:
                        good.pop(rnd.randrange(10000))
                out.write(','.join(quote(v) for v in f).encode() + b'\n')
    out.close()
    if args.expect:
        with open(args.expect, 'w') as e:
            json.dump(expect, e, indent=1, sort_keys=True)
    print('%s: %d rows (%d rejected as %d kinds of mistake), %d representatives' % (
        args.out, written, nbad, len(expect['rejects_by_code']), len(reps)), file=sys.stderr)


def quote(v):
    return '"' + v.replace('"', '""') + '"' if any(c in v for c in ',"\r\n') else v


def spoil(code, f, good, rnd, today):
    """The row f made wrong in the way code names, as a line of the file (bytes)."""
    f = list(f)
    if code == 'row-too-long':
        f[8] = 'x' * 70000
    elif code == 'invalid-encoding':
        # 's-Hertogenbosch with a Latin-1 e-acute: not UTF-8.
        return ','.join(quote(v) for v in f[:8]).encode() + b',Rechtbank \xe9\xe9n'
    elif code == 'malformed-row':
        return ','.join(quote(v) for v in f[:7]).encode()
    elif code == 'missing-field':
        f[4] = ''
    elif code == 'field-too-long':
        f[8] = 'Rechtbank ' + 'x' * 200
    elif code == 'invalid-party':
        f[1] = f[1].upper()
    elif code == 'invalid-bsn':
        d = f[1][4:]
        f[1] = 'bsn:' + d[:8] + str((int(d[8]) + 1) % 10)
    elif code == 'principal-not-person':
        f[1] = 'kvk:%08d' % rnd.randrange(10000000, 99999999)
    elif code == 'self-mandate':
        f[2] = f[1]
        f[3] = 'uwv-wia-inzien'
    elif code == 'invalid-kind':
        f[4] = 'bewindvoering'
    elif code == 'court-ref-required':
        f[7] = ''
    elif code == 'invalid-date':
        f[5] = '%02d-%02d-%04d' % (today.day, today.month, today.year)
    elif code == 'period-inverted':
        f[5], f[6] = f[6], f[5]
    elif code == 'unknown-service':
        f[3] = 'uwv-ww-aanvragn'
    elif code == 'representative-type-not-allowed':
        f[2] = 'kvk:%08d' % rnd.randrange(10000000, 99999999)
        f[3] = 'uwv-wia-inzien'
    elif code == 'kind-not-allowed':
        f[3] = 'uwv-ww-aanvragen'
        f[4] = 'mentorschap'
    elif code == 'period-too-long':
        f[3] = 'uwv-ww-aanvragen'
        f[4] = 'bewind'
        f[6] = (datetime.date.fromisoformat(f[5]) + datetime.timedelta(days=400)).isoformat()
    elif code == 'already-ended':
        f[5] = (today - datetime.timedelta(days=200)).isoformat()
        f[6] = (today - datetime.timedelta(days=1)).isoformat()
    elif code == 'duplicate-external-ref':
        f[0] = rnd.choice(good)[0]
    elif code == 'legal-mandate-exists':
        g = rnd.choice([g for g in good if g[3] in ('uwv-ww-aanvragen', 'belasting-aangifte')]
                       or good)
        f[1], f[3], f[4], f[5], f[6] = g[1], g[3], 'voluntary', g[5], g[6]
        f[2] = 'bsn:999990019' if f[2] != 'bsn:999990019' else 'bsn:999993653'
    elif code == 'mandate-overlap':
        g = rnd.choice(good)
        f[1:] = g[1:]
    return ','.join(quote(v) for v in f).encode()


if __name__ == '__main__':
    main()
