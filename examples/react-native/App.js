// A minimal screen using the tracker (see eventline.js for the storage and transport).
import { useEffect, useState } from 'react';
import { Button, Text, View } from 'react-native';
import { startTracking } from './eventline';

const CONFIG = {
  collectorUrl: 'https://collect.example.com',
  partnerId: '0192f0c6-0000-7000-8000-000000000001',
};

export default function App() {
  const [tracker, setTracker] = useState(null);

  useEffect(() => {
    let live;
    startTracking(CONFIG, (rejected) => console.warn('eventline rejected', rejected)).then((t) => {
      live = t;
      t.track('app_opened');
      setTracker(t);
    });
    return () => live?.free();
  }, []);

  if (!tracker) return <Text>Loading…</Text>;
  return (
    <View>
      <Button
        title="Add to cart"
        onPress={() => tracker.track('added_to_cart', { product_id: 'J-1', price: 99.5, quantity: 1 })}
      />
      <Button title="Log in as 42" onPress={() => tracker.identify('42')} />
      <Button title="Log out" onPress={() => tracker.reset()} />
    </View>
  );
}
