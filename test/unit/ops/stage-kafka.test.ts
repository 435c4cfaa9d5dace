// The admin client of replay and topics must reach MSK the way the deployment allows: the IAM listener with
// OAUTHBEARER tokens from the MSK IAM signer. Locally it talks plaintext to the stack's broker.
import { describe, expect, it } from 'vitest';
import { stageKafkaSettings } from '../../../ops/stage-kafka';
import { kafkaClientOptions } from '../../../shared/kafka/client-options';

const MSK = 'b-1.mobility.abc123.c3.kafka.eu-west-1.amazonaws.com:9098';

describe("a stage command's Kafka connection", () => {
  it('is plaintext to the local broker for the local stage', () => {
    expect(stageKafkaSettings('local', 'replay', {})).toEqual({
      brokers: ['127.0.0.1:9092'],
      clientId: 'replay',
    });
    expect(stageKafkaSettings('local', 'replay', { KAFKA_BROKERS: '127.0.0.1:29092' }).iam).toBeUndefined();
  });

  it('uses MSK IAM auth for an AWS stage unless KAFKA_AUTH says otherwise', () => {
    const settings = stageKafkaSettings('prod', 'replay', { KAFKA_BROKERS: MSK, AWS_REGION: 'eu-west-1' });
    expect(settings).toEqual({ brokers: [MSK], clientId: 'replay', iam: { region: 'eu-west-1' } });
    const options = kafkaClientOptions(settings);
    expect(options.sasl?.mechanism).toBe('OAUTHBEARER');
    expect(options.tls).toEqual({});
    expect(
      stageKafkaSettings('prod', 'replay', {
        KAFKA_BROKERS: MSK,
        AWS_REGION: 'eu-west-1',
        KAFKA_AUTH: 'none',
      }).iam,
    ).toBeUndefined();
  });

  it('names what is missing for an AWS stage: the brokers, then the region the IAM token is signed for', () => {
    expect(() => stageKafkaSettings('prod', 'replay', { AWS_REGION: 'eu-west-1' })).toThrow(
      /--stage prod: set KAFKA_BROKERS .*BootstrapBrokerStringSaslIam/,
    );
    expect(() => stageKafkaSettings('prod', 'replay', { KAFKA_BROKERS: MSK })).toThrow(
      /KAFKA_AUTH=iam needs AWS_REGION/,
    );
  });
});
