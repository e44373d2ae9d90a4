/** A GeoJSON value (particle type 23), kept as its JSON text. */
export class GeoJSON {
  constructor(readonly text: string) {}
  toJSON(): unknown {
    return JSON.parse(this.text);
  }
}
