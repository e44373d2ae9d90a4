/** Public surface of the Kafka seam (see link.ts). */
export type { BatchControl, Compression, ConsumedBatch, IncomingMessage, KafkaConsumer, KafkaLink, KafkaLinkFactory, KafkaProducer, KafkaRole, OutgoingMessage, PartitionLag, TopicPartition } from './link.js';
export { MessageTooLargeError } from './link.js';
export { kafkajsLink } from './kafkajs.js';
