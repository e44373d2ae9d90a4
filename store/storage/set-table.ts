/**
 * Set names and record counts: set ids as stored in index entries, and per set the index entries
 * that are live records (expired-but-not-removed count as live) and tombstones.
 *
 * Invariants (asserted, on in production): no count goes below zero, and the tombstone total is
 * the sum of the per-set tombstone counts. A count going negative means an entry was removed
 * twice, an accounting bug a clamp would hide.
 */
import assert from 'node:assert/strict';
import { StorageError } from './errors.js';
import { SET_ID_MAX } from './primary-index.js';

/** Sets a namespace may hold (Aerospike's limit). */
export const SETS_MAX = 1023;

export class SetTable {
  readonly #ids = new Map<string, number>();
  readonly #names: string[] = [''];
  readonly #liveBySet = new Float64Array(SET_ID_MAX + 1);
  readonly #tombBySet = new Float64Array(SET_ID_MAX + 1);
  #tombstones = 0;

  constructor(private readonly namespace: string) {}

  id(name: string): number {
    if (name === '') return 0;
    let id = this.#ids.get(name);
    if (id === undefined) {
      if (this.#names.length > Math.min(SETS_MAX, SET_ID_MAX)) {
        throw new StorageError('SET_LIMIT', `namespace ${this.namespace} already holds ${SETS_MAX} sets`);
      }
      id = this.#names.length;
      this.#names.push(name);
      this.#ids.set(name, id);
    }
    return id;
  }

  name(id: number): string {
    return this.#names[id] ?? '';
  }

  /** Names in id order, without the empty (null) set. */
  names(): string[] {
    return this.#names.slice(1);
  }

  /** Counts one index entry in (delta 1) or out (delta -1). */
  count(setId: number, tombstone: boolean, delta: 1 | -1): void {
    const arr = tombstone ? this.#tombBySet : this.#liveBySet;
    const n = arr[setId]! + delta;
    assert(n >= 0, `namespace ${this.namespace}: set ${setId} ${tombstone ? 'tombstone' : 'record'} count would drift below zero: an index entry was un-counted twice`);
    arr[setId] = n;
    if (tombstone) {
      this.#tombstones += delta;
      assert(this.#tombstones >= 0, `namespace ${this.namespace}: tombstone count would drift below zero`);
    }
  }

  counts(setId: number): { objects: number; tombstones: number } {
    return { objects: this.#liveBySet[setId] ?? 0, tombstones: this.#tombBySet[setId] ?? 0 };
  }

  get tombstones(): number {
    return this.#tombstones;
  }

  /** The snapshot form: names and counts for sets 0..names.length-1. */
  toSnapshot(): { sets: string[]; tombstones: number; liveBySet: number[]; tombBySet: number[] } {
    const n = this.#names.length;
    return {
      sets: this.names(),
      tombstones: this.#tombstones,
      liveBySet: Array.from(this.#liveBySet.subarray(0, n)),
      tombBySet: Array.from(this.#tombBySet.subarray(0, n)),
    };
  }

  load(s: { sets: string[]; tombstones: number; liveBySet: number[]; tombBySet: number[] }): void {
    for (const name of s.sets) this.id(name);
    this.#liveBySet.set(s.liveBySet);
    this.#tombBySet.set(s.tombBySet);
    this.#tombstones = s.tombstones;
    let sum = 0;
    for (const v of s.tombBySet) sum += v;
    if (sum !== s.tombstones) throw new StorageError('CORRUPT_FILE', `namespace ${this.namespace}: snapshot tombstones ${s.tombstones} differ from the sets' sum ${sum}`);
  }

  reset(): void {
    this.#ids.clear();
    this.#names.length = 1;
    this.#liveBySet.fill(0);
    this.#tombBySet.fill(0);
    this.#tombstones = 0;
  }
}
