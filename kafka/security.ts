/**
 * Kafka connection security shared by the shipper (per destination) and the receiver: TLS
 * (a CA to trust, a client certificate and key for mutual TLS) and SASL (PLAIN, SCRAM-SHA-256,
 * SCRAM-SHA-512). One config shape, validated in one place, turned into kafkajs `ssl`/`sasl`
 * options in one place, so the Kafka client construction stays a one-line spread.
 *
 * Config keys (the same in a destination and in the receiver's file):
 *   tls                  true: connect with TLS (implied by any tls-* key)
 *   tls-ca-file          PEM file of the CA(s) that signed the brokers' certificates
 *   tls-cert-file        PEM client certificate (mutual TLS); needs tls-key-file
 *   tls-key-file         PEM private key of the client certificate
 *   tls-reject-unauthorized  false accepts any broker certificate (tests only)
 *   sasl-mechanism       none | plain | scram-sha-256 | scram-sha-512
 *   sasl-username, sasl-password
 *
 * Authentication failures are not worth a silent retry: `describeKafkaError` names the
 * destination, the mechanism and the user so the log and the stats say what to fix.
 */
import { readFileSync } from 'node:fs';
import type { KafkaConfig, SASLOptions } from 'kafkajs';

export const SASL_MECHANISMS = ['none', 'plain', 'scram-sha-256', 'scram-sha-512'] as const;
export type SaslMechanism = (typeof SASL_MECHANISMS)[number];

/** Convict schema entries, spread into the destination and receiver schemas. */
export const kafkaSecuritySchema = {
  tls: { doc: 'Connect to Kafka with TLS (implied by any tls-* file)', format: Boolean, default: false },
  'tls-ca-file': { doc: 'PEM file of the CA that signed the brokers\' certificates', format: String, default: '' },
  'tls-cert-file': { doc: 'PEM client certificate for mutual TLS', format: String, default: '' },
  'tls-key-file': { doc: 'PEM private key of the client certificate', format: String, default: '' },
  'tls-reject-unauthorized': { doc: 'Refuse brokers whose certificate does not verify', format: Boolean, default: true },
  'sasl-mechanism': { doc: 'SASL mechanism: none, plain, scram-sha-256, scram-sha-512', format: [...SASL_MECHANISMS], default: 'none' as SaslMechanism },
  'sasl-username': { doc: 'SASL user', format: String, default: '' },
  'sasl-password': { doc: 'SASL password', format: String, default: '', sensitive: true },
};

export interface KafkaSecurity {
  tls: boolean;
  tlsCaFile: string;
  tlsCertFile: string;
  tlsKeyFile: string;
  tlsRejectUnauthorized: boolean;
  saslMechanism: SaslMechanism;
  saslUsername: string;
  saslPassword: string;
}

export const NO_KAFKA_SECURITY: KafkaSecurity = {
  tls: false, tlsCaFile: '', tlsCertFile: '', tlsKeyFile: '', tlsRejectUnauthorized: true, saslMechanism: 'none', saslUsername: '', saslPassword: '',
};

/** Reads the keys from a validated convict config; throws naming the key on a bad combination. */
export function readKafkaSecurity(get: (key: keyof typeof kafkaSecuritySchema) => unknown, at: string): KafkaSecurity {
  const s: KafkaSecurity = {
    tls: get('tls') as boolean,
    tlsCaFile: get('tls-ca-file') as string,
    tlsCertFile: get('tls-cert-file') as string,
    tlsKeyFile: get('tls-key-file') as string,
    tlsRejectUnauthorized: get('tls-reject-unauthorized') as boolean,
    saslMechanism: get('sasl-mechanism') as SaslMechanism,
    saslUsername: get('sasl-username') as string,
    saslPassword: get('sasl-password') as string,
  };
  if ((s.tlsCertFile === '') !== (s.tlsKeyFile === '')) throw new Error(`${at}tls-cert-file: tls-cert-file and tls-key-file go together`);
  if (s.saslMechanism !== 'none' && s.saslUsername === '') throw new Error(`${at}sasl-username: required with sasl-mechanism ${s.saslMechanism}`);
  if (s.saslMechanism === 'none' && s.saslUsername !== '') throw new Error(`${at}sasl-mechanism: sasl-username is set but sasl-mechanism is none`);
  return s;
}

function readPem(file: string, key: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`${key}: cannot read ${file}: ${(err as Error).message}`);
  }
}

/** The kafkajs `ssl` and `sasl` options (nothing when both are off). Reads the PEM files. */
export function kafkaClientSecurity(s: KafkaSecurity): Pick<KafkaConfig, 'ssl' | 'sasl'> {
  const out: Pick<KafkaConfig, 'ssl' | 'sasl'> = {};
  if (s.tls || s.tlsCaFile || s.tlsCertFile) {
    out.ssl = {
      rejectUnauthorized: s.tlsRejectUnauthorized,
      ...(s.tlsCaFile ? { ca: [readPem(s.tlsCaFile, 'tls-ca-file')] } : {}),
      ...(s.tlsCertFile ? { cert: readPem(s.tlsCertFile, 'tls-cert-file'), key: readPem(s.tlsKeyFile, 'tls-key-file') } : {}),
    };
  }
  if (s.saslMechanism !== 'none') out.sasl = { mechanism: s.saslMechanism, username: s.saslUsername, password: s.saslPassword } as SASLOptions;
  return out;
}

/** True for errors that retrying with the same settings cannot fix (bad credentials, TLS refused). */
export function isKafkaAuthFailure(err: unknown): boolean {
  const e = err as { name?: string; message?: string; cause?: unknown; originalError?: unknown } | undefined;
  if (!e) return false;
  if (e.name === 'KafkaJSSASLAuthenticationError') return true;
  if (/SASL .* authentication failed|Authentication failed|certificate|self[- ]signed|unable to verify|handshake/i.test(e.message ?? '')) return true;
  return isKafkaAuthFailure(e.originalError) || (e.cause !== err && e.cause !== undefined && isKafkaAuthFailure(e.cause));
}

/** A one-line message for a Kafka error that names where it happened and, for auth, as whom. */
export function describeKafkaError(err: unknown, where: string, brokers: string[], s: KafkaSecurity): string {
  const msg = (err as Error)?.message ?? String(err);
  if (!isKafkaAuthFailure(err)) return `${where}: ${msg}`;
  const who = s.saslMechanism === 'none' ? 'without SASL' : `SASL ${s.saslMechanism.toUpperCase()} as user "${s.saslUsername}"`;
  const tls = s.tls || s.tlsCaFile || s.tlsCertFile ? `TLS${s.tlsCertFile ? ' with a client certificate' : ''}` : 'no TLS';
  return `${where}: Kafka ${brokers.join(',')} refused the connection (${who}, ${tls}): ${msg}; check the credentials and certificates`;
}
