package dev.zombi.iceberg;

import java.lang.reflect.Method;

/**
 * The Spark SQL execution (one per query action) the calling thread plans for, when it runs in
 * a Spark driver: Spark sets {@code spark.sql.execution.id} before it optimizes and plans a
 * query, so every scan of one query sees the same id and the next query a new one.
 *
 * <p>Looked up by reflection: the plugin does not depend on Spark and works in any engine
 * (without Spark there is no id and the listing memo falls back to its time bound).
 */
final class SparkQueries {
  private static final String EXECUTION_ID = "spark.sql.execution.id";

  private static final Method ACTIVE_SESSION;
  private static final Method SPARK_CONTEXT;
  private static final Method LOCAL_PROPERTY;
  private static final Method OPTION_IS_EMPTY;
  private static final Method OPTION_GET;

  static {
    Method active = null;
    Method context = null;
    Method property = null;
    Method isEmpty = null;
    Method get = null;
    try {
      ClassLoader loader = SparkQueries.class.getClassLoader();
      Class<?> session = Class.forName("org.apache.spark.sql.SparkSession", false, loader);
      Class<?> sparkContext = Class.forName("org.apache.spark.SparkContext", false, loader);
      Class<?> option = Class.forName("scala.Option", false, loader);
      active = session.getMethod("getActiveSession");
      context = session.getMethod("sparkContext");
      property = sparkContext.getMethod("getLocalProperty", String.class);
      isEmpty = option.getMethod("isEmpty");
      get = option.getMethod("get");
    } catch (ReflectiveOperationException | LinkageError e) {
      active = null;
    }
    ACTIVE_SESSION = active;
    SPARK_CONTEXT = context;
    LOCAL_PROPERTY = property;
    OPTION_IS_EMPTY = isEmpty;
    OPTION_GET = get;
  }

  private SparkQueries() {}

  /** The current Spark SQL execution id, or null outside a Spark query. */
  static String currentExecutionId() {
    if (ACTIVE_SESSION == null) {
      return null;
    }
    try {
      Object session = ACTIVE_SESSION.invoke(null);
      if ((Boolean) OPTION_IS_EMPTY.invoke(session)) {
        return null;
      }
      Object context = SPARK_CONTEXT.invoke(OPTION_GET.invoke(session));
      return (String) LOCAL_PROPERTY.invoke(context, EXECUTION_ID);
    } catch (ReflectiveOperationException | RuntimeException e) {
      return null;
    }
  }
}
